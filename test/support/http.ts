/** A small HTTP client for the API tests. */
export interface Reply<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export function api(baseUrl: string, adminToken?: string) {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { ...(adminToken ? { authorization: `Bearer ${adminToken}` } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep the text */
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
  return {
    call,
    issue: (userId: string, couponId: string) => call('POST', `/api/v2/users/${userId}/coupons/${couponId}/issue`),
    status: (userId: string, couponId: string) => call('GET', `/api/v2/users/${userId}/coupons/${couponId}`),
    createCoupon: (body: unknown) => call('POST', '/api/v2/admin/coupons', body),
    adminCoupon: (couponId: string) => call('GET', `/api/v2/admin/coupons/${couponId}`),
  };
}

/** Run `count` tasks, `parallel` at a time. */
export async function inParallel<T>(count: number, parallel: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

export async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 250));
    value = await probe();
  }
  return value;
}
