import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

/** Starts a drain for one coupon without waiting for it. */
export interface DrainTrigger {
  start(couponId: string): Promise<void>;
}

/** The event a triggered drain receives (a scheduled drain receives EventBridge's event instead). */
export interface DrainRequest {
  readonly couponId: string;
}

/**
 * Asynchronous Lambda invoke (InvocationType Event): Lambda queues the event and answers 202 at once, so
 * the admission that found no drain running pays one short call, once per drain mark lifetime.
 */
export class LambdaDrainTrigger implements DrainTrigger {
  private readonly lambda: LambdaClient;

  constructor(
    private readonly functionName: string,
    options: { region: string; endpoint: string | undefined },
  ) {
    this.lambda = new LambdaClient({
      region: options.region,
      endpoint: options.endpoint,
      maxAttempts: 2,
      requestHandler: { requestTimeout: 2_000, connectionTimeout: 1_000 },
      ...(options.endpoint && !process.env.AWS_ACCESS_KEY_ID
        ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
        : {}),
    });
  }

  async start(couponId: string): Promise<void> {
    const request: DrainRequest = { couponId };
    await this.lambda.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(request)),
      }),
    );
  }
}

/** For runs without a drain function to invoke: the schedule alone drains. */
export const scheduleOnly: DrainTrigger = { start: async () => {} };
