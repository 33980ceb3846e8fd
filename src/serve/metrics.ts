// Prometheus metrics of `ringrl serve` (prom-client, one registry per server so several servers
// can live in one process). Names follow SGLang's where one exists (num_running_reqs,
// num_queue_reqs, prompt/generation tokens), with the ringrl_ prefix.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServingLoop } from './loop.ts';

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'code'>;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly latency: Histogram;

  constructor(loop: ServingLoop) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'ringrl_http_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['route', 'code'],
      registers,
    });
    this.promptTokens = new Counter({
      name: 'ringrl_prompt_tokens_total',
      help: 'Prompt tokens of finished requests.',
      registers,
    });
    this.generationTokens = new Counter({
      name: 'ringrl_generation_tokens_total',
      help: 'Generated tokens of finished requests.',
      registers,
    });
    this.latency = new Histogram({
      name: 'ringrl_e2e_request_latency_seconds',
      help: 'Generation request latency.',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300],
      registers,
    });
    const stats = () => loop.engine.stats();
    new Gauge({
      name: 'ringrl_num_running_reqs',
      help: 'Sequences decoding now.',
      registers,
      collect() {
        this.set(stats().active);
      },
    });
    new Gauge({
      name: 'ringrl_num_queue_reqs',
      help: 'Sequences waiting for a slot.',
      registers,
      collect() {
        this.set(stats().waiting);
      },
    });
    new Gauge({
      name: 'ringrl_decode_steps',
      help: 'Engine decode steps since start.',
      registers,
      collect() {
        this.set(stats().decodeSteps);
      },
    });
    new Gauge({
      name: 'ringrl_capacity',
      help: 'Sequences decoded concurrently at most.',
      registers,
      collect() {
        this.set(stats().capacity);
      },
    });
    new Gauge({
      name: 'ringrl_paused',
      help: '1 while generation is paused.',
      registers,
      collect() {
        this.set(loop.paused ? 1 : 0);
      },
    });
  }

  finished(promptTokens: number, generated: number, seconds: number): void {
    this.promptTokens.inc(promptTokens);
    this.generationTokens.inc(generated);
    this.latency.observe(seconds);
  }
}
