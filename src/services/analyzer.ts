import { setTimeout as delay } from 'node:timers/promises';

export type AnalysisStage = 'describing' | 'embedding';
export interface Analysis { description: string; embedding: number[] }
export interface DescribeInput {
  /** JPEGs: one for a photo, a few frames in order for a video. */
  images: Buffer[];
  kind: 'image' | 'video';
}
export interface CallOptions { signal?: AbortSignal }

/**
 * A model provider: one request per call, no retries or checks of its own. Those are the
 * same for every provider and live in analyzeMedia. A failure worth repeating is an
 * AnalysisError with retryable set.
 */
export interface Analyzer {
  /** For logs and docs, e.g. "ollama llava + nomic-embed-text". */
  readonly name: string;
  describe(input: DescribeInput, opts?: CallOptions): Promise<unknown>;
  embed(text: string, opts?: CallOptions): Promise<unknown>;
}

export class AnalysisError extends Error {
  override name = 'AnalysisError';
  retryable: boolean;
  constructor(message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.retryable = retryable;
  }
}

export interface AnalyzeOptions extends CallOptions {
  /** Called as each step starts, with the share (0–1) of the analysis already done. */
  onStage?: (stage: AnalysisStage, done: number) => unknown;
  /** Pause before the single retry of a step. */
  retryDelayMs?: number;
}

// The vision model's answer takes most of the time; embedding a sentence is quick.
const DESCRIBE_SHARE = 0.8;

/** Describes, then embeds the description; each step is retried once on a retryable failure. */
export async function analyzeMedia(analyzer: Analyzer, input: DescribeInput, opts: AnalyzeOptions = {}): Promise<Analysis> {
  const { signal, onStage, retryDelayMs = 250 } = opts;
  signal?.throwIfAborted();
  await onStage?.('describing', 0);
  const description = await once(() => analyzer.describe(input, { signal }).then(checkDescription), signal, retryDelayMs);
  await onStage?.('embedding', DESCRIBE_SHARE);
  const embedding = await once(() => analyzer.embed(description, { signal }).then(checkEmbedding), signal, retryDelayMs);
  return { description, embedding };
}

/** A search query's vector, or null when the model cannot give one now: search then falls back to text. */
export async function embedQuery(analyzer: Analyzer, query: string, opts: CallOptions = {}): Promise<number[] | null> {
  try {
    return checkEmbedding(await analyzer.embed(query, opts));
  } catch {
    return null;
  }
}

async function once<T>(step: () => Promise<T>, signal: AbortSignal | undefined, retryDelayMs: number): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (signal?.aborted || !(err instanceof AnalysisError) || !err.retryable) throw err;
    await delay(retryDelayMs, undefined, { signal });
    return step();
  }
}

const MAX_DESCRIPTION_CHARS = 2000;

/** Rejects the classic failure modes of small vision models: silence, loops and token soup. */
export function checkDescription(value: unknown): string {
  const text = typeof value === 'string' ? value.trim() : '';
  const problem = descriptionProblem(text);
  if (problem) throw new AnalysisError(`Model returned an unusable description (${problem})`, true);
  return text;
}

function descriptionProblem(text: string): string | undefined {
  if (!text) return 'empty';
  if (text.length > MAX_DESCRIPTION_CHARS) return 'too long';
  const nonSpace = text.replace(/\s/g, '').length;
  const letters = (text.match(/\p{L}/gu) ?? []).length;
  if (letters / nonSpace < 0.5) return 'gibberish';
  const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
  if (words.length < 3) return 'too short';
  // Words no language has: long runs without vowels, or one "word" that is most of the text.
  const odd = words.filter((w) => w.length > 25 || (w.length >= 6 && /^[a-z]+$/.test(w) && !/[aeiouy]/.test(w)));
  if (odd.length / words.length > 0.3) return 'gibberish';
  // A phrase of 1–4 words repeated until it covers most of the text is a generation loop.
  for (let n = 1; n <= 4; n++) {
    const counts = new Map<string, number>();
    let top = 0;
    for (let i = 0; i + n <= words.length; i++) {
      const gram = words.slice(i, i + n).join(' ');
      const c = (counts.get(gram) ?? 0) + 1;
      counts.set(gram, c);
      top = Math.max(top, c);
    }
    if (top >= 3 && (top * n) / words.length > 0.5) return 'repetitive';
  }
  return undefined;
}

export function checkEmbedding(value: unknown): number[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((x) => typeof x === 'number' && Number.isFinite(x)) ||
    value.every((x) => x === 0)
  ) {
    throw new AnalysisError('Model returned an invalid embedding', true);
  }
  return value;
}
