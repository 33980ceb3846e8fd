// Published versions over HTTP, for engines on other hosts: the trainer serves its snapshot dirs
// (`GET /v<N>/<file>`, HEAD too) with ETag and single-range `Range` requests; an engine streams a
// file into memory and, when the connection drops, asks for the rest (`Range: bytes=<got>-`,
// `If-Range: <etag>`: a file replaced meanwhile comes back whole and the download restarts). Plain
// node:http: the two endpoints need neither routing nor a body parser, and the engine room stays
// below serve/ (fastify). The checksums are checked by the loader (snapshot.ts), not here.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';

export interface WeightServerOptions {
  /** Default 127.0.0.1; another host needs `apiKey`. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Require `Authorization: Bearer KEY`. */
  apiKey?: string;
}

export interface WeightServer {
  url: string;
  close(): Promise<void>;
}

const FILES = new Set([
  'config.json',
  'manifest.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
]);

/** Serve the version dirs under `root`. */
export async function serveWeights(root: string, options: WeightServerOptions = {}): Promise<WeightServer> {
  const host = options.host ?? '127.0.0.1';
  if (!['127.0.0.1', 'localhost', '::1'].includes(host) && !options.apiKey)
    throw new RingrlError(
      `weights: serving snapshots on ${host} (reachable from other machines) needs an API key, or listen on 127.0.0.1`,
    );
  const server = http.createServer((req, res) => {
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: message }));
    };
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`)
      return fail(401, 'missing or wrong API key: send Authorization: Bearer KEY');
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} not allowed; use GET`);
    const m = /^\/(v\d+)\/([^/?]+)$/.exec(req.url ?? '');
    if (!m || !FILES.has(m[2]!)) return fail(404, `no snapshot file ${req.url}; expected /v<N>/<file>`);
    const path = join(root, m[1]!, m[2]!);
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(path);
    } catch {
      return fail(404, `${m[1]}/${m[2]} is not published (or was collected)`);
    }
    const etag = `"${stat.ino.toString(36)}-${stat.size.toString(36)}-${Math.floor(stat.mtimeMs).toString(36)}"`;
    let start = 0;
    let end = stat.size; // exclusive
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const partial = range !== null && (ifRange === undefined || ifRange === etag);
    if (partial) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]) + 1);
      if (start >= stat.size || start >= end) {
        res.writeHead(416, { 'content-range': `bytes */${stat.size}` });
        return res.end();
      }
    }
    res.writeHead(partial ? 206 : 200, {
      'content-type': m[2]!.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'content-length': end - start,
      'accept-ranges': 'bytes',
      etag,
      ...(partial ? { 'content-range': `bytes ${start}-${end - 1}/${stat.size}` } : {}),
    });
    if (req.method === 'HEAD' || end === start) return res.end();
    const stream = createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 });
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => done());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

export interface FetchOptions {
  apiKey?: string;
  /** Attempts after a dropped connection (each resumes where the last stopped). Default 5. */
  retries?: number;
}

/** Where a download's bytes go: `start` at every fresh copy (first response, or a file replaced meanwhile). */
export interface ByteSink {
  start(total: number): void;
  write(chunk: Buffer, position: number): void;
}

/** A small file as text (config.json, manifest.json), resumed like the rest. */
export async function fetchText(url: string, options: FetchOptions = {}): Promise<string> {
  let into = Buffer.alloc(0);
  await fetchInto(url, options, {
    start: (total) => (into = Buffer.alloc(total)),
    write: (chunk, position) => chunk.copy(into, position),
  });
  return into.toString('utf8');
}

/**
 * Stream `url` into `sink`; a dropped connection resumes with a Range request from the last byte
 * received. HTTP errors are one line naming the URL.
 */
export async function fetchInto(url: string, options: FetchOptions, sink: ByteSink): Promise<number> {
  const retries = options.retries ?? 5;
  let total = -1;
  let received = 0;
  let etag: string | undefined;
  let lastError = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await new Promise((done) => setTimeout(done, Math.min(2000, 50 * 2 ** attempt)));
    const headers: Record<string, string> = {};
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    if (total >= 0 && received > 0) {
      headers.range = `bytes=${received}-`;
      if (etag) headers['if-range'] = etag;
    }
    const complete = await new Promise<boolean>((done, fail) => {
      const req = http.get(url, { headers }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200 && status !== 206) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let message = text;
            try {
              message = JSON.parse(text).error ?? text;
            } catch {}
            fail(new RingrlError(`${url}: HTTP ${status}: ${String(message).split('\n')[0]}`));
          });
          return;
        }
        if (status === 200) {
          total = Number(res.headers['content-length']);
          if (!Number.isFinite(total)) return fail(new RingrlError(`${url}: no Content-Length; cannot stream it`));
          received = 0; // a fresh copy: the first, or the file changed since (If-Range did not match)
          sink.start(total);
        } else if (!res.headers['content-range']?.startsWith(`bytes ${received}-`)) {
          return fail(new RingrlError(`${url}: asked for bytes ${received}-, got ${res.headers['content-range']}`));
        }
        etag = res.headers.etag;
        res.on('data', (c: Buffer) => {
          if (received + c.length > total) return res.destroy(new Error('more bytes than announced'));
          try {
            sink.write(c, received);
          } catch (error) {
            res.destroy();
            return fail(error);
          }
          received += c.length;
        });
        res.on('end', () => done(received === total));
        res.on('error', (e) => ((lastError = e.message), done(false)));
        res.on('close', () => done(received === total));
      });
      req.on('error', (e) => ((lastError = e.message), done(false)));
    });
    if (complete) return total;
  }
  throw new RingrlError(
    `${url}: the connection dropped ${retries + 1} times (${lastError || 'ended early'}); got ${received} of ${total} bytes`,
  );
}
