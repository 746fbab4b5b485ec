// What Panther's documented webhook.js does: read the body, JSON.parse it,
// print it with util.inspect, answer 200 "success". Used as a benchmark target.
const http = require('http');
const util = require('util');

const port = Number(process.argv[2] || 8081);
const server = http.createServer((request, response) => {
  let data = '';
  request.on('data', (chunk) => { data += chunk; });
  request.on('end', () => {
    console.log(util.inspect(JSON.parse(data), { depth: null }));
    response.end('success');
  });
});
server.listen(port, '127.0.0.1', () => {
  console.error(`listening on http://127.0.0.1:${server.address().port}`);
});
