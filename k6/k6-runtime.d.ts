// What k6's runtime provides besides its modules (@types/k6 declares __ENV, __VU, __ITER, open, ...).
declare const console: {
  log(...values: unknown[]): void;
  warn(...values: unknown[]): void;
  error(...values: unknown[]): void;
};
