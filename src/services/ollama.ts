import { AnalysisError, type Analyzer } from './analyzer.ts';

export interface OllamaConfig { url: string; visionModel: string; embedModel: string; timeoutMs: number }

const PHOTO_PROMPT =
  'Describe this photo in two to four plain sentences: the main subject, the setting, notable objects, ' +
  'colours, lighting and any clearly legible text. State only what is visible; do not guess names, ' +
  'speculate, or add commentary or preamble.';
const VIDEO_PROMPT =
  'These images are frames from one video, in order. Describe the video in two to four plain sentences: ' +
  'the main subject, the setting, what happens, notable objects and colours. State only what is visible; ' +
  'do not guess names, speculate, or add commentary or preamble.';

/** Provider 1: an Ollama-compatible server (/api/generate for the vision model, /api/embed for vectors). */
export function createOllamaAnalyzer(config: OllamaConfig): Analyzer {
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
      if (!res.ok) {
        // A missing model or a rejected request stays that way; overload and outages pass.
        const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
        throw new AnalysisError(`${path} returned HTTP ${res.status}${await errorDetail(res)}`, retryable);
      }
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
    name: `ollama ${config.visionModel} + ${config.embedModel}`,
    async describe({ images, kind }, { signal } = {}) {
      const body = {
        model: config.visionModel,
        prompt: kind === 'video' ? VIDEO_PROMPT : PHOTO_PROMPT,
        images: images.map((i) => i.toString('base64')),
        stream: false,
      };
      return (await post('/api/generate', body, signal))?.response;
    },
    async embed(text, { signal } = {}) {
      return (await post('/api/embed', { model: config.embedModel, input: text }, signal))?.embeddings?.[0];
    },
  };
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
