/**
 * The floor for any Node HTTP upload on this machine: a bare node:http server that writes
 * each request body to a file, with no parsing, hashing or database (or, at /discard, keeps
 * nothing at all). Run as its own process (like the API) by the ingest scenario; prints its
 * port on stdout.
 */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const dir = process.argv[2]!;
let n = 0;
const server = http.createServer((req, res) => {
  // POST /discard reads the body and keeps nothing: what receiving alone costs, before any byte is stored.
  const sink = req.url === '/discard' ? new Writable({ write: (_chunk, _enc, done) => done() }) : createWriteStream(path.join(dir, String(n++)));
  pipeline(req, sink).then(
    () => res.end('{}'),
    () => res.destroy(),
  );
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as { port: number }).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
