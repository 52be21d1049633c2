import v8 from 'node:v8';

// Imported first by main.ts, so it is set before the heap grows. Received bytes live outside
// V8's heap (a socket read is a 64 KiB Buffer, a rendition a few hundred KiB), and by default
// V8 answers such external memory on its own schedule with full collections of the whole heap,
// every 25 MiB or so while a large upload arrives. Counted in the heap's global limit instead,
// they are collected with the heap's own rhythm: figure 5 of the bench (docs/performance.md)
// received 1 GiB 14 % faster with it, at the same peak resident memory.
v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
