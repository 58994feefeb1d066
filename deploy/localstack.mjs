/**
 * The `localstack` stage (docs/localstack.md): `serverless deploy --stage localstack` into LocalStack.
 * On every other stage this plugin does nothing at all.
 *
 * It stands in for serverless-localstack, which cannot run under osls 4: that plugin calls
 * provider.getCredentials(), provider.request() and provider.sdk, the AWS SDK v2 surface osls 4 removed
 * ("provider.getCredentials() is no longer available"). osls 4 builds every AWS SDK v3 client it uses
 * from provider.getAwsSdkV3Config(). On the localstack stage this plugin:
 * - gives those clients (CloudFormation, S3, ...) custom.localstack.endpoint, S3 in path style (no bucket
 *   subdomains to resolve), and LocalStack's test credentials (never the developer's real ones);
 * - serves the API as a REST API (API Gateway v1): LocalStack's free plan has no HTTP API (API Gateway
 *   v2). Every `httpApi` route becomes the same `http` route, without authorizers (the admin authorizer
 *   answers in the HTTP API's simple format, which a REST API does not take; the admin handlers check
 *   the token themselves), and its function's handler becomes the same handler behind
 *   functions/rest-api.ts, which hands it the HTTP API's payload 2.0;
 * - gives the functions custom.localstack.functionsEndpoint as their Secrets Manager endpoint
 *   (DYNAMODB_ENDPOINT and LAMBDA_ENDPOINT come from the stage's params in serverless.yml);
 * - leaves out what reads the HTTP API's own metrics (the 5xx rate alarm and the dashboard that draws
 *   them, deploy/observability.cjs): there is no HTTP API to read them from.
 */
export const STAGE = 'localstack';

/** LocalStack accepts any credentials; these are the ones its documents use. */
const LOCALSTACK_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export default class LocalStackStage {
  constructor(serverless, options = {}, utils = {}) {
    this.serverless = serverless;
    this.log = utils.log ?? { notice: () => undefined };
    this.hooks = {};
    if ((options.stage ?? serverless.service.provider.stage) !== STAGE) return;

    const { endpoint, functionsEndpoint } = serverless.service.custom?.localstack ?? {};
    for (const [name, value] of Object.entries({ endpoint, functionsEndpoint })) {
      if (!/^https?:\/\/\S+$/.test(value ?? ''))
        throw new serverless.classes.Error(`custom.localstack.${name} must be an http(s) URL on the localstack stage, got "${value ?? ''}".`);
    }
    this.useLocalStack(serverless.getProvider('aws'), endpoint);
    serverless.service.provider.environment = { ...serverless.service.provider.environment, AWS_ENDPOINT_URL_SECRETS_MANAGER: functionsEndpoint };
    this.useRestApi();
    this.hooks['before:aws:package:finalize:saveServiceState'] = () => this.dropHttpApiReferences();
  }

  /** The framework's AWS SDK v3 clients talk to LocalStack, with LocalStack's credentials. */
  useLocalStack(provider, endpoint) {
    const awsConfig = provider.getAwsSdkV3Config.bind(provider);
    provider.getAwsSdkV3Config = async (options = {}) => ({
      ...(await awsConfig({ ...options, credentials: LOCALSTACK_CREDENTIALS })),
      endpoint,
      forcePathStyle: true,
    });
    this.log.notice(`localstack stage: AWS calls go to ${endpoint}`);
  }

  /** Every httpApi route as the same REST API route, its handler behind functions/rest-api.ts. */
  useRestApi() {
    const service = this.serverless.service;
    for (const name of service.getAllFunctions()) {
      const fn = service.getFunction(name);
      const events = fn.events ?? [];
      if (!events.some((event) => event.httpApi)) continue;
      fn.events = events.map((event) => (event.httpApi ? { http: restRoute(event.httpApi) } : event));
      fn.handler = `functions/rest-api.${name}Rest`;
    }
  }

  /** Resources and outputs that name the HTTP API, and then whatever names those, are left out. */
  dropHttpApiReferences() {
    const template = this.serverless.service.provider.compiledCloudFormationTemplate;
    const dropped = new Set(['HttpApi']);
    const names = (value) =>
      [...dropped].some((id) => JSON.stringify(value).includes(`"Ref":"${id}"`) || JSON.stringify(value).includes(`"Fn::GetAtt":["${id}"`));
    for (let found = true; found; ) {
      found = false;
      for (const [id, resource] of Object.entries(template.Resources)) {
        if (names(resource)) {
          delete template.Resources[id];
          dropped.add(id);
          found = true;
        }
      }
    }
    for (const [id, output] of Object.entries(template.Outputs ?? {})) if (names(output)) delete template.Outputs[id];
    dropped.delete('HttpApi');
    if (dropped.size > 0) this.log.notice(`localstack stage: left out ${[...dropped].join(', ')} (they read the HTTP API, which this stage has not)`);
  }
}

/** `GET /path` or {method, path} as a REST API route. */
function restRoute(httpApi) {
  const [method, path] = typeof httpApi === 'string' ? httpApi.split(' ') : [httpApi.method, httpApi.path];
  return { method: String(method).toLowerCase(), path };
}
