import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeDecisionReport,
  decodeEntry,
  decodePersistLag,
  decodeTransfer,
  encodeDecisionReport,
  encodeEntry,
  encodePersistLag,
  ENCODING_MARKERS,
  liveFieldOf,
  decisionReportField,
  restoredEntryTail,
} from '../lib/redis/codec.js';
import { PROJECT_ROOT } from '../localstack/processes.js';

/** TypeScript sources of what ships and what operates it (the gateway emulates Redis itself: not ours). */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'gateway' ? [] : sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('the stored encodings (lib/redis/codec.ts)', () => {
  it('round-trip through the codec', () => {
    const entry = { ticket: 12, requestedAt: 1_700_000_000_123, outcome: { kind: 'ISSUED', issuedAt: 1_700_000_000_456 } } as const;
    expect(decodeEntry(encodeEntry(entry))).toEqual(entry);
    expect(decodeEntry(`12:${restoredEntryTail(1, 2)}`)).toEqual({ ticket: 12, requestedAt: 1, outcome: { kind: 'ISSUED', issuedAt: 2 } });
    expect(decodeEntry('3:4:R')).toEqual({ ticket: 3, requestedAt: 4, outcome: { kind: 'REJECTED' } });
    expect(decodeTransfer('out:5:2:99')).toEqual({ direction: 'out', units: 5, toShard: 2, at: 99 });
    expect(decodeTransfer('in:5:1')).toEqual({ direction: 'in', units: 5, fromShard: 1 });
    expect(decodeTransfer('garbage')).toBeUndefined();
    expect(decodeDecisionReport(encodeDecisionReport([1, 2, 3], 42), 3)).toEqual({ numbers: [1, 2, 3], at: 42 });
    expect(decodeDecisionReport(encodeDecisionReport([1, 2], 42), 3)).toBeUndefined();
    const lag = { p50Ms: 5, p99Ms: 9, maxMs: 11, at: 1_700_000_000_000 };
    expect(decodePersistLag(encodePersistLag(lag))).toEqual(lag);
    expect(liveFieldOf(decisionReportField('abc:1'))).toEqual({ kind: 'decisions', containerId: 'abc:1' });
    expect(liveFieldOf('lag:2')).toEqual({ kind: 'lag', shard: 2 });
    expect(liveFieldOf('issued')).toEqual({ kind: 'counter', name: 'issued' });
  });

  it('are written and parsed by the codec alone: no other TypeScript file spells their markers', () => {
    // A marker at the start of a string, template or regular expression literal ('I:', `out:${...}`,
    // /^lag:/) is code building or parsing an encoding; the Lua side is documented against the codec.
    const literal = (marker: string) => new RegExp(`(['"\`]|/\\^?)${marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
    const offenders: string[] = [];
    for (const dir of ['lib', 'functions', 'localstack', 'deploy']) {
      for (const file of sources(join(PROJECT_ROOT, dir))) {
        if (file.endsWith(join('redis', 'codec.ts'))) continue;
        // Comments may quote an encoding; code may not.
        const text = readFileSync(file, 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .replace(/^\s*\/\/.*$/gm, '');
        for (const marker of ENCODING_MARKERS) {
          if (literal(marker).test(text)) offenders.push(`${relative(PROJECT_ROOT, file)}: ${marker}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
