import v8 from 'node:v8';

// Imported first by main.ts, so it is set before the heap grows. Received bytes live outside
// V8's heap (a socket read is a 64 KiB Buffer, a rendition a few hundred KiB), and by default
// V8 answers such external memory on its own schedule with full collections of the whole heap,
// every 25 MiB or so while a large upload arrives. Counted in the heap's global limit instead,
// they are collected with the heap's own rhythm: figure 5 of the bench (docs/performance-history.md)
// received 1 GiB 14 % faster with it, at the same peak resident memory.
v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
// That limit grows by at most 1.3× the external memory that survived the last collection, and
// while an upload streams almost none survives (each read is copied and dropped): the API still
// marked its whole heap every few tens of MiB. Letting it grow 4× received 1 GiB about 5 %
// faster in six alternating pairs of figure 5, at the same peak resident memory; the worker
// (figures 1–2) showed no difference either way.
v8.setFlagsFromString('--external-memory-max-growing-factor=4');
