// Server-sent events as SGLang and OpenAI stream them: `data: <json>\n\n` per chunk, then
// `data: [DONE]\n\n`. A client that disconnects early triggers `onClose` (the request is aborted).
import type { FastifyReply } from 'fastify';

export interface SseStream {
  send(chunk: unknown): void;
  end(): void;
}

export function openSse(reply: FastifyReply, onClose: () => void): SseStream {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let ended = false;
  raw.on('close', () => {
    if (!ended) onClose();
  });
  return {
    send(chunk) {
      if (!ended && !raw.destroyed) raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
    },
    end() {
      if (ended) return;
      ended = true;
      if (!raw.destroyed) raw.end('data: [DONE]\n\n');
    },
  };
}
