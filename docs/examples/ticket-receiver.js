// A small receiver of the kind Panther's docs lead to: it turns each alert into a
// ticket. It is the README's example for `hookscope probe`. Run it with
//   node docs/examples/ticket-receiver.js 3000          (the naive version)
//   node docs/examples/ticket-receiver.js 3000 --dedupe (one ticket per alertId)
// GET /tickets says how many tickets were opened: probe's --state.
const http = require('http');

const port = Number(process.argv[2] || 3000);
const dedupe = process.argv.includes('--dedupe');
const tickets = new Map();
let opened = 0;

const server = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/tickets') {
    response.setHeader('Content-Type', 'application/json');
    return response.end(JSON.stringify({ tickets: opened }));
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    let alert;
    try {
      alert = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (error) {
      response.statusCode = 400;
      return response.end('not JSON');
    }
    const key = alert.alertId || alert.id;
    if (!dedupe || !tickets.has(key)) {
      opened += 1;
      tickets.set(key, opened);
    }
    response.end(JSON.stringify({ ticket: tickets.get(key) }));
  });
});
server.listen(port, '127.0.0.1', () => console.error(`listening on http://127.0.0.1:${port}`));
