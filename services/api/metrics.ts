import { collectDefaultMetrics, Histogram, register } from 'prom-client';

let defaultsCollected = false;

/** Node's default metrics, once per process, in the default registry that `/metrics` serves. */
export function ensureDefaultMetrics(): void {
  if (defaultsCollected || register.getSingleMetric('process_cpu_user_seconds_total')) {
    defaultsCollected = true;
    return;
  }
  collectDefaultMetrics();
  defaultsCollected = true;
}

/** HTTP latency by method, route pattern (never the raw URL: ids would explode the series) and status. */
export function httpDuration(): Histogram<'method' | 'route' | 'status_code'> {
  const existing = register.getSingleMetric('tradecore_http_request_duration_seconds');
  if (existing) return existing as Histogram<'method' | 'route' | 'status_code'>;
  return new Histogram({
    name: 'tradecore_http_request_duration_seconds',
    help: 'HTTP request latency, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
}
