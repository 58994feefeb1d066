import { describe, expect, it, vi } from 'vitest';
import { log, sampledLog } from '../lib/log.js';
import { CircuitBreaker, CircuitOpenError } from '../lib/redis/circuit-breaker.js';

describe("a container's circuit breaker in front of Redis", () => {
  const clock = () => {
    let now = 0;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it('opens after consecutive failures only, answers with the time left, lets one probe through, and closes on its success', () => {
    const time = clock();
    const breaker = new CircuitBreaker({ failures: 3, openMs: 2_000 }, time.now);
    breaker.failed();
    breaker.failed();
    breaker.succeeded(); // a success in between: the count starts over
    breaker.failed();
    breaker.failed();
    expect(() => breaker.admit()).not.toThrow();
    breaker.failed();
    expect(() => breaker.admit()).toThrow(CircuitOpenError);
    time.advance(900);
    const open = (() => {
      try {
        breaker.admit();
      } catch (error) {
        return error as CircuitOpenError;
      }
    })();
    expect(open?.retryAfterSeconds).toBe(2);
    time.advance(1_100);
    breaker.admit(); // the probe
    expect(() => breaker.admit()).toThrow(CircuitOpenError); // others wait for the probe
    breaker.succeeded();
    for (let i = 0; i < 5; i++) expect(() => breaker.admit()).not.toThrow();
  });

  it('opens again at once when its probe fails', () => {
    const time = clock();
    const breaker = new CircuitBreaker({ failures: 2, openMs: 1_000 }, time.now);
    breaker.failed();
    breaker.failed();
    time.advance(1_000);
    breaker.admit();
    breaker.failed();
    expect(() => breaker.admit()).toThrow(CircuitOpenError);
    time.advance(1_000);
    expect(() => breaker.admit()).not.toThrow();
  });

  it('says it opened once, however many calls that were already waiting on Redis fail after it opened', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failures: 3, openMs: 2_000 }, () => now);
    const warned = vi.spyOn(log, 'warn').mockImplementation(() => undefined);
    try {
      // 200 requests admitted before Redis stopped answering, all timing out one after the other.
      for (let i = 0; i < 200; i++) breaker.admit();
      for (let i = 0; i < 200; i++) breaker.failed();
      expect(warned.mock.calls.filter(([message]) => String(message).startsWith('Redis is not answering'))).toHaveLength(1);
      expect(() => breaker.admit()).toThrow(CircuitOpenError);
      now = 2_000;
      breaker.admit(); // the probe
      breaker.failed();
      expect(() => breaker.admit()).toThrow(CircuitOpenError);
    } finally {
      warned.mockRestore();
    }
  });

  it('never opens with failures set to 0', () => {
    const breaker = new CircuitBreaker({ failures: 0, openMs: 1_000 });
    for (let i = 0; i < 100; i++) breaker.failed();
    expect(() => breaker.admit()).not.toThrow();
  });
});

describe('a sampled log line', () => {
  it('is written at most once per interval, saying how many it stands for', () => {
    let now = 0;
    const warn = vi.spyOn(log, 'error').mockImplementation(() => undefined);
    try {
      const line = sampledLog('error', 'answered 503', 10_000, () => now);
      for (let i = 0; i < 50; i++) line({ route: 'r' });
      now += 10_000;
      line({ route: 'r' });
      expect(warn.mock.calls).toEqual([
        ['answered 503', { route: 'r' }],
        ['answered 503', { route: 'r', alsoSinceLastLine: 49 }],
      ]);
    } finally {
      warn.mockRestore();
    }
  });
});
