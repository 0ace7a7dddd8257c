// Prometheus metrics of one oracle process (GET /metrics).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    http: new Histogram({
      name: "oracle_http_request_duration_seconds",
      help: "HTTP request duration by route and status",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    received: new Counter({
      name: "oracle_receipts_received_total",
      help: "Receipts recorded by the API, by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    verdicts: new Counter({
      name: "oracle_receipt_verdicts_total",
      help: "Receipts verified or rejected by the workers, by status and reason code",
      labelNames: ["status", "reason"],
      registers: [registry],
    }),
    requeued: new Counter({
      name: "oracle_receipts_requeued_total",
      help: "Receipts put on the queue again by the sweeper (the queue had lost them)",
      registers: [registry],
    }),
    epoch: new Gauge({
      name: "oracle_epoch_state",
      help: "Latest epoch and its state (1 for the current state label)",
      labelNames: ["epoch", "state"],
      registers: [registry],
    }),
  };
}

export type OracleMetrics = ReturnType<typeof createMetrics>;
