// Writes the HAR chrome-har (npm) makes of one POST, from the DevTools Protocol
// events Chromium emits for it: tests/interop.rs replays it with hookscope.
//
// Usage: node chrome_har.mjs URL CONTENT-TYPE BODY
import { harFromMessages } from 'chrome-har';

const [url, contentType, body] = process.argv.slice(2);
const frame = { frameId: 'frame-1', loaderId: 'loader-1' };
const messages = [
  { method: 'Page.frameStartedLoading', params: { frameId: frame.frameId } },
  {
    method: 'Network.requestWillBeSent',
    params: {
      ...frame,
      requestId: 'request-1',
      documentURL: url,
      request: {
        url,
        method: 'POST',
        headers: { 'Content-Type': contentType, 'X-Seen': 'chrome-har' },
        postData: body,
        hasPostData: true,
        initialPriority: 'VeryHigh',
        referrerPolicy: 'strict-origin-when-cross-origin',
      },
      timestamp: 100.0,
      wallTime: 1764000000.0,
      initiator: { type: 'other' },
      type: 'Document',
    },
  },
  {
    method: 'Network.responseReceived',
    params: {
      ...frame,
      requestId: 'request-1',
      timestamp: 100.05,
      type: 'Document',
      response: {
        url,
        status: 200,
        statusText: 'OK',
        headers: { 'Content-Type': 'text/plain' },
        mimeType: 'text/plain',
        connectionReused: false,
        connectionId: 1,
        encodedDataLength: 7,
        fromDiskCache: false,
        fromServiceWorker: false,
        securityState: 'neutral',
        protocol: 'http/1.1',
        timing: {
          requestTime: 100.0, proxyStart: -1, proxyEnd: -1, dnsStart: -1, dnsEnd: -1,
          connectStart: 0.1, connectEnd: 0.2, sslStart: -1, sslEnd: -1, workerStart: -1,
          workerReady: -1, sendStart: 0.3, sendEnd: 0.4, pushStart: 0, pushEnd: 0,
          receiveHeadersEnd: 40,
        },
      },
    },
  },
  { method: 'Network.loadingFinished', params: { requestId: 'request-1', timestamp: 100.06, encodedDataLength: 7 } },
  { method: 'Page.loadEventFired', params: { timestamp: 100.07 } },
];
process.stdout.write(JSON.stringify(harFromMessages(messages)));
