import sharp from 'sharp';

export interface AnalyzerConfig { url: string; visionModel: string; embedModel: string; timeoutMs: number }
export interface Analysis { description: string; embedding: number[] }
export type AnalysisStage = 'describing' | 'embedding';
export interface AnalyzeOptions {
  signal?: AbortSignal;
  /** percent is of the whole analysis; describing dominates because the vision model is slow. */
  onStage?: (stage: AnalysisStage, percent: number) => void;
}
export interface Analyzer { analyze(imagePath: string, opts?: AnalyzeOptions): Promise<Analysis> }

export class AnalysisError extends Error {
  override name = 'AnalysisError';
  retryable: boolean;
  constructor(message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.retryable = retryable;
  }
}

const PROMPT =
  'Describe this photo in two to four plain sentences: the main subject, the setting, notable objects, ' +
  'colours, lighting and any clearly legible text. State only what is visible; do not guess names, ' +
  'speculate, or add commentary or preamble.';
const MAX_DESCRIPTION_CHARS = 2000;
// Vision models see ~1 MP at most; sending the original only costs bandwidth and memory.
const MODEL_IMAGE_SIZE = 1024;

export function createOllamaAnalyzer(config: AnalyzerConfig): Analyzer {
  const base = config.url.replace(/\/+$/, '');

  async function post(path: string, body: unknown, signal: AbortSignal | undefined): Promise<any> {
    const timeout = AbortSignal.timeout(config.timeoutMs);
    try {
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (!res.ok) throw new AnalysisError(`${path} returned HTTP ${res.status}${await errorDetail(res)}`, true);
      return await res.json().catch((err: unknown) => {
        throw new AnalysisError(`${path} returned invalid JSON`, true, { cause: err });
      });
    } catch (err) {
      // The caller cancelling is not a model failure: surface its reason untouched.
      if (signal?.aborted) throw signal.reason;
      if (err instanceof AnalysisError) throw err;
      if (timeout.aborted) throw new AnalysisError(`${path} timed out after ${config.timeoutMs} ms`, true, { cause: err });
      throw new AnalysisError(`${path} request failed: ${networkReason(err)}`, true, { cause: err });
    }
  }

  return {
    async analyze(imagePath, opts = {}) {
      const { signal, onStage } = opts;
      signal?.throwIfAborted();
      onStage?.('describing', 0);
      const image = await modelImage(imagePath);
      signal?.throwIfAborted();

      const generated = await post(
        '/api/generate',
        { model: config.visionModel, prompt: PROMPT, images: [image.toString('base64')], stream: false },
        signal,
      );
      const description = checkDescription(generated?.response);

      onStage?.('embedding', 90);
      const embedded = await post('/api/embed', { model: config.embedModel, input: description }, signal);
      const embedding = checkEmbedding(embedded?.embeddings?.[0]);
      onStage?.('embedding', 100);
      return { description, embedding };
    },
  };
}

async function modelImage(imagePath: string): Promise<Buffer> {
  try {
    return await sharp(imagePath, { failOn: 'error', limitInputPixels: 100_000_000, autoOrient: true, animated: false })
      .timeout({ seconds: 60 })
      .resize(MODEL_IMAGE_SIZE, MODEL_IMAGE_SIZE, { fit: 'inside', withoutEnlargement: true })
      // JPEG has no alpha; sharp would otherwise flatten transparency to black.
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 85 })
      .toBuffer();
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new AnalysisError(`Could not prepare image for analysis: ${first}`, false, { cause: err });
  }
}

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

function checkEmbedding(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new AnalysisError('Model returned an invalid embedding', true);
  }
  return value;
}

async function errorDetail(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed?.error === 'string') return `: ${parsed.error}`;
  } catch {}
  return text ? `: ${text.slice(0, 200)}` : '';
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
