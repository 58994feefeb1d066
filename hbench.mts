process.env.UPSTASH_REDIS_REST_URL='http://127.0.0.1:8079'; process.env.UPSTASH_REDIS_REST_TOKEN='local-upstash-token';
process.env.DYNAMODB_ENDPOINT='http://127.0.0.1:8000'; process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED='true'; process.env.LOG_LEVEL='warn';
const { handler } = await import('./functions/issue.ts');
const ev = { routeKey: 'POST /x', rawPath: '/x', headers: {}, pathParameters: { userId: '42', couponId: '1' }, requestContext: { http: { sourceIp: '1.2.3.4' } } };
await handler(ev);
const N = 20000; let i = 0; const t0 = performance.now();
await Promise.all(Array.from({ length: 100 }, async () => { while (i++ < N) await handler(ev); }));
const dt = performance.now() - t0; console.log((N / dt * 1000).toFixed(0), 'handler calls/s in-process');
