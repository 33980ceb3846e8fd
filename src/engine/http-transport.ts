// HttpEngine's wire: JSON requests with a timeout and streamed (SSE) requests over node:http, and
// how their failures are told apart (the server answered with an error, or did not answer).
import http from 'node:http';
import { RingrlError } from '../errors.ts';

export class HttpError extends RingrlError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A server's answer that is an error in a 200 stream (an SSE `{error}` chunk). */
export class ServerError extends Error {}

/** No answer (connection refused or reset, timeout) or a 5xx: the server, not the request, failed. */
export function transportFailure(error: Error): boolean {
  return error instanceof HttpError ? error.status >= 500 : !(error instanceof RingrlError);
}

/** JSON over node:http; no byte for `timeoutMs` is an error. */
export function requestJson(
  agent: http.Agent,
  url: string,
  method: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  return new Promise((done, fail) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      { method, agent, headers: payload === undefined ? withoutContentType(headers) : headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = text ? JSON.parse(text) : {};
          } catch {
            // plain-text answers (/flush_cache) stay text
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) return fail(httpError(url, status, json));
          done(json);
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', fail);
    req.end(payload);
  });
}

/**
 * POST a streamed request; `onData` gets each SSE event's data (but [DONE]). Resolves true when the
 * stream ended with [DONE], false when it ended without; rejects on connection errors and HTTP
 * errors. `cancel` drops the connection (the server aborts the request).
 */
export function streamJson(
  agent: http.Agent,
  url: string,
  headers: Record<string, string>,
  body: unknown,
  onData: (data: string) => void,
): { done: Promise<boolean>; cancel: () => void } {
  let req: http.ClientRequest | undefined;
  const done = new Promise<boolean>((settle, reject) => {
    req = http.request(url, { method: 'POST', agent, headers }, (res) => {
      const status = res.statusCode ?? 0;
      let pending = '';
      let finished = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        pending += chunk;
        if (status >= 400) return;
        for (let at = pending.indexOf('\n\n'); at >= 0; at = pending.indexOf('\n\n')) {
          const event = pending.slice(0, at);
          pending = pending.slice(at + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') finished = true;
            else onData(data);
          }
        }
      });
      res.on('error', reject);
      res.on('close', () => settle(finished)); // cut short without an error event
      res.on('end', () => {
        if (status < 400) return settle(finished);
        let json: unknown = pending;
        try {
          json = JSON.parse(pending);
        } catch {
          // a plain-text error
        }
        reject(httpError(url, status, json));
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  return { done, cancel: () => req?.destroy() };
}

function httpError(url: string, status: number, json: unknown): HttpError {
  const error = (json as { error?: unknown })?.error;
  const message =
    typeof error === 'string'
      ? error
      : ((error as { message?: string })?.message ?? (typeof json === 'string' ? json : JSON.stringify(json)));
  return new HttpError(status, `${url}: HTTP ${status}: ${firstLine(String(message))}`);
}

function withoutContentType(headers: Record<string, string>): Record<string, string> {
  const { 'content-type': _, ...rest } = headers;
  return rest;
}

export function firstLine(text: string): string {
  return text.split('\n')[0]!;
}
