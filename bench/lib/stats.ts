/** Nearest-rank percentile of an unsorted sample; NaN for an empty one. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export const median = (values: readonly number[]) => percentile(values, 50);

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

export function ms(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '–';
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(digits)} ms`;
}

export const num = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
/** MiB per second. */
export const mbps = (bytes: number, millis: number) => bytes / MiB / (millis / 1000);
export const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
