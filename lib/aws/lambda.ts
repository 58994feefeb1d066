import { AwsEndpoint, credentialsFromEnv } from './client.js';

/** Lambda's Invoke API (or serverless offline's stand-in for it). */
export class LambdaInvoker {
  private readonly endpoint: AwsEndpoint;

  constructor(region: string, endpoint: string | undefined) {
    this.endpoint = new AwsEndpoint('lambda', region, endpoint, () => credentialsFromEnv(process.env, endpoint !== undefined));
  }

  /**
   * Queue an event for the function and return (InvocationType Event: Lambda answers 202 at once). The
   * caller's wait is bounded by timeoutMs, connection included.
   */
  async invokeAsync(functionName: string, payload: unknown, timeoutMs: number): Promise<void> {
    await this.endpoint.call({
      path: `/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`,
      headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
      body: JSON.stringify(payload),
      timeoutMs,
    });
  }
}
