import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as restApi from '../functions/rest-api.js';
import { freePort, PROJECT_ROOT } from '../localstack/processes.js';
import { API_ROUTES, type Resource } from './support/package.js';

const SERVERLESS = join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js');
/** LocalStack as the functions reach it from the containers LocalStack runs them in. */
const FUNCTIONS_ENDPOINT = 'http://localhost.localstack.cloud:4566';

/** `serverless <command> --stage localstack` as a developer would run it, offline. */
function serverless(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [SERVERLESS, ...args, '--stage', 'localstack'], {
    cwd: PROJECT_ROOT,
    env: { ...withoutStageSettings(process.env), SLS_TELEMETRY_DISABLED: '1', ESBUILD_WORK_FOLDER: `.esbuild-localstack-${process.pid}`, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** The stage as a developer's shell would leave it by default: none of its settings from this process's environment. */
function withoutStageSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !/^(LOCALSTACK_[A-Z_]+|TABLE_NAME|AUTH_MODE|[A-Z_]*_CONCURRENCY)$/.test(name)));
}

describe('serverless package --stage localstack', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-localstack-package-'));
  let resources: Record<string, Resource>;
  let output: string;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  beforeAll(() => {
    // No AWS credentials, no LocalStack running: packaging needs neither.
    const run = serverless(['package', '--package', dir], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' });
    output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).toBe(0);
    resources = (JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as { Resources: Record<string, Resource> }).Resources;
  }, 150_000);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(PROJECT_ROOT, `.esbuild-localstack-${process.pid}`), { recursive: true, force: true });
  });

  it("serves every route of the HTTP API as the same REST API route (LocalStack's free plan has no HTTP API), without authorizers", () => {
    expect(ofType('AWS::ApiGateway::RestApi')).toHaveLength(1);
    expect(Object.keys(resources).filter((id) => resources[id]!.Type.startsWith('AWS::ApiGatewayV2::'))).toEqual([]);
    // A REST API's path is its resources' chain of PathParts.
    const pathOf = (ref: unknown): string => {
      const id = (ref as { Ref?: string }).Ref;
      if (!id) return '';
      const resource = resources[id]!.Properties;
      return `${pathOf(resource.ParentId)}/${resource.PathPart}`;
    };
    const methods = ofType('AWS::ApiGateway::Method').map(([, r]) => r.Properties);
    const routes = methods.filter((m) => m.HttpMethod !== 'OPTIONS').map((m) => `${m.HttpMethod} ${pathOf(m.ResourceId) || '/'}`);
    expect(routes.sort()).toEqual([...API_ROUTES].sort());
    for (const method of methods) expect(method.AuthorizationType).toBe('NONE');
  });

  it("runs each API function's own handler behind functions/rest-api.ts, and the drain and restore unchanged", async () => {
    const handlers = Object.fromEntries(ofType('AWS::Lambda::Function').map(([id, r]) => [id.replace(/LambdaFunction$/, ''), r.Properties.Handler as string]));
    expect(handlers.Drain).toBe('functions/drain.handler');
    expect(handlers.Restore).toBe('functions/restore.handler');
    expect(handlers.AdminAuthorizer).toBe('functions/admin-authorizer.handler');
    const api = Object.entries(handlers).filter(([name]) => !['Drain', 'Restore', 'AdminAuthorizer'].includes(name));
    expect(api).toHaveLength(12);
    for (const [name, handler] of api) {
      const exported = `${name.charAt(0).toLowerCase()}${name.slice(1)}Rest`;
      expect(handler).toBe(`functions/rest-api.${exported}`);
      expect(typeof (restApi as Record<string, unknown>)[exported], exported).toBe('function');
    }
    const bundle = execFileSync('unzip', ['-p', join(dir, 'issue.zip'), 'functions/rest-api.mjs'], { encoding: 'utf8', maxBuffer: 50e6 });
    expect(bundle).toContain('Admit one issue request');
  });

  it('points every function at LocalStack for DynamoDB, Lambda and Secrets Manager, with secrets named, never inlined', () => {
    const functions = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties.Environment.Variables as Record<string, string>);
    expect(functions).toHaveLength(15);
    for (const env of functions) {
      expect(env).toMatchObject({
        STAGE: 'localstack',
        DYNAMODB_ENDPOINT: FUNCTIONS_ENDPOINT,
        LAMBDA_ENDPOINT: FUNCTIONS_ENDPOINT,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: FUNCTIONS_ENDPOINT,
        UPSTASH_SECRET_ID: 'fcfs-coupons/localstack/upstash',
        ADMIN_TOKEN_SECRET_ID: 'fcfs-coupons/localstack/admin',
        UPSTASH_REDIS_REST_URL: '',
        UPSTASH_REDIS_REST_TOKEN: '',
        ADMIN_TOKEN: '',
        AUTH_MODE: 'none',
        TABLE_NAME: 'fcfs-coupons-localstack',
      });
    }
    // The secrets LocalStack's ready hook creates are the ones the functions read.
    const hook = readFileSync(join(PROJECT_ROOT, 'deploy', 'localstack', 'create-secrets.sh'), 'utf8');
    expect(hook).toContain('--name fcfs-coupons/localstack/upstash');
    expect(hook).toContain('--name fcfs-coupons/localstack/admin');
  });

  it("keeps the drain's schedule, the ledger table and the alarms on our metrics; leaves out what reads the HTTP API", () => {
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules).toEqual([expect.objectContaining({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' })]);
    expect(rules[0]!.Targets[0].Arn).toEqual({ 'Fn::GetAtt': ['DrainLambdaFunction', 'Arn'] });
    expect(resources.LedgerTable!.Properties.TableName).toBe('fcfs-coupons-localstack');
    expect(resources.DeadLettersAlarm).toBeDefined();
    expect(resources.PersistLagAlarm).toBeDefined();
    expect(resources.Api5xxRateAlarm).toBeUndefined();
    expect(resources.DropDashboard).toBeUndefined();
    expect(JSON.stringify(resources)).not.toContain('"Ref":"HttpApi"');
    expect(output).toContain('left out Api5xxRateAlarm, DropDashboard');
  });

  it("is what docs/localstack.md's commands name: the REST API, the drain's log group, the secrets, the admin token", () => {
    const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'localstack.md'), 'utf8');
    expect(doc).toContain(`name=='${resources.ApiGatewayRestApi!.Properties.Name}'`);
    expect(doc).toContain(`/aws/lambda/${resources.DrainLambdaFunction!.Properties.FunctionName}`);
    for (const secret of ['fcfs-coupons/localstack/upstash', 'fcfs-coupons/localstack/admin']) expect(doc).toContain(secret);
    const compose = readFileSync(join(PROJECT_ROOT, 'compose.localstack.yml'), 'utf8');
    const adminToken = /FCFS_ADMIN_TOKEN: \$\{FCFS_ADMIN_TOKEN:-([^}]+)\}/.exec(compose)![1]!;
    expect(doc).toContain(`Authorization: Bearer ${adminToken}`);
  });
});

describe("the framework's AWS calls on the localstack stage", () => {
  let server: Server;
  const requests: { host: string; authorization: string; body: string }[] = [];

  beforeAll(async () => {
    // A stand-in for LocalStack that records what reaches it and answers as CloudFormation does for a missing stack.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests.push({ host: req.headers.host ?? '', authorization: req.headers.authorization ?? '', body });
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(
          '<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id fcfs-coupons-localstack does not exist</Message></Error></ErrorResponse>',
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("go to LocalStack's endpoint with LocalStack's test credentials, never the developer's", async () => {
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Not spawnSync: the stand-in answers from this process.
    const child = spawn(process.execPath, [SERVERLESS, 'info', '--stage', 'localstack'], {
      cwd: PROJECT_ROOT,
      env: {
        ...withoutStageSettings(process.env),
        SLS_TELEMETRY_DISABLED: '1',
        LOCALSTACK_ENDPOINT: endpoint,
        AWS_ACCESS_KEY_ID: 'AKIAREALDEVELOPERKEY',
        AWS_SECRET_ACCESS_KEY: 'real-secret',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(output).toContain('Stack with id fcfs-coupons-localstack does not exist');
    expect(requests.length).toBeGreaterThan(0);
    expect(requests[0]!.body).toContain('Action=DescribeStacks');
    for (const request of requests) {
      expect(request.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=test\//);
      expect(request.authorization).not.toContain('AKIAREALDEVELOPERKEY');
    }
  });
});

describe('deploy/localstack.mjs on any other stage', () => {
  it("changes nothing: no hooks, the AWS provider's configuration and the functions untouched", async () => {
    type Plugin = new (serverless: unknown, options: { stage: string }) => { hooks: Record<string, unknown> };
    const { default: LocalStackStage } = (await import(join(PROJECT_ROOT, 'deploy', 'localstack.mjs'))) as { default: Plugin };
    const provider = { getAwsSdkV3Config: async () => ({}) };
    const original = provider.getAwsSdkV3Config;
    const fn = { handler: 'functions/issue.handler', events: [{ httpApi: { method: 'POST', path: '/x' } }] };
    const environment = { STAGE: 'prod' };
    const fake = {
      service: { provider: { stage: 'prod', environment }, custom: {}, getAllFunctions: () => ['issue'], getFunction: () => fn },
      getProvider: () => provider,
      classes: { Error },
    };
    for (const stage of ['prod', 'local', 'staging']) {
      const plugin = new LocalStackStage(fake, { stage });
      expect(plugin.hooks).toEqual({});
    }
    expect(provider.getAwsSdkV3Config).toBe(original);
    expect(fn).toEqual({ handler: 'functions/issue.handler', events: [{ httpApi: { method: 'POST', path: '/x' } }] });
    expect(fake.service.provider.environment).toBe(environment);
  });
});

describe('functions/rest-api.ts', () => {
  /** A REST API proxy event as API Gateway v1 (and LocalStack) sends it. */
  const restEvent = (method: string, resource: string, path: string, extra: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent => ({
    httpMethod: method,
    resource,
    path,
    headers: { Host: 'abc.execute-api.localhost.localstack.cloud:4566', 'User-Agent': 'curl/8', Authorization: 'Bearer t' },
    multiValueHeaders: {
      Host: ['abc.execute-api.localhost.localstack.cloud:4566'],
      'User-Agent': ['curl/8'],
      Authorization: ['Bearer t'],
      'X-Many': ['a', 'b'],
    },
    queryStringParameters: { dryRun: 'true' },
    multiValueQueryStringParameters: { dryRun: ['true'], tag: ['a b', 'c'] },
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'abc',
      httpMethod: method,
      path: `/localstack${path}`,
      protocol: 'HTTP/1.1',
      requestId: 'req-1',
      requestTimeEpoch: 1_764_558_000_000,
      resourceId: 'r1',
      resourcePath: resource,
      stage: 'localstack',
      identity: { sourceIp: '172.18.0.1', userAgent: 'curl/8' },
      authorizer: null,
    } as unknown as APIGatewayProxyEvent['requestContext'],
    ...extra,
  });

  it("hands a handler the HTTP API's payload 2.0: lowercased headers, route key, path parameters, query, source ip", () => {
    const event = restApi.toHttpApiEvent(
      restEvent('POST', '/api/v2/users/{userId}/coupons/{couponId}/issue', '/api/v2/users/u1/coupons/c1/issue', {
        pathParameters: { userId: 'u1', couponId: 'c1' },
        body: '{}',
      }),
    );
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'POST /api/v2/users/{userId}/coupons/{couponId}/issue',
      rawPath: '/api/v2/users/u1/coupons/c1/issue',
      rawQueryString: 'dryRun=true&tag=a%20b&tag=c',
      queryStringParameters: { dryRun: 'true', tag: 'a b,c' },
      pathParameters: { userId: 'u1', couponId: 'c1' },
      body: '{}',
      isBase64Encoded: false,
      requestContext: {
        requestId: 'req-1',
        stage: 'localstack',
        http: { method: 'POST', path: '/api/v2/users/u1/coupons/c1/issue', sourceIp: '172.18.0.1', userAgent: 'curl/8' },
      },
    });
    expect(event.headers).toMatchObject({ authorization: 'Bearer t', 'user-agent': 'curl/8', 'x-many': 'a,b' });
    expect(Object.keys(event.headers).every((name) => name === name.toLowerCase())).toBe(true);
  });

  it('answers through a real handler in the shape a REST API proxy integration requires', async () => {
    const missing = await restApi.notFoundRest(restEvent('GET', '/{proxy+}', '/nope', { pathParameters: { proxy: 'nope' } }));
    expect(missing).toMatchObject({ statusCode: 404, isBase64Encoded: false });
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'NOT_FOUND' });
    // The not-found handler tells a wrong method from a wrong path by the raw path.
    const wrongMethod = await restApi.notFoundRest(
      restEvent('DELETE', '/{proxy+}', '/api/v2/admin/coupons', { pathParameters: { proxy: 'api/v2/admin/coupons' } }),
    );
    expect(wrongMethod).toMatchObject({ statusCode: 405, headers: { allow: 'POST' } });
    const page = await restApi.adminPageRest(restEvent('GET', '/admin', '/admin'));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<html');
  });
});

describe('the Upstash stand-in of compose.localstack.yml (deploy/localstack/upstash-gateway.ts)', () => {
  it("runs the project's scripts, which carry Upstash's allow-key-locking flag that Redis itself refuses", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'deploy/localstack/upstash-gateway.ts'], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        UPSTASH_REDIS_REST_TOKEN: 'compose-token',
        GATEWAY_PORT: String(port),
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(inject('services').redisPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
        child.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
      });
      const evaluate = (token: string) =>
        fetch(`http://127.0.0.1:${port}/`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: JSON.stringify(['EVAL', '#!lua flags=allow-key-locking\nreturn 7', '0']),
        });
      const answer = await evaluate('compose-token');
      expect(await answer.json()).toEqual({ result: 7 });
      expect((await evaluate('wrong')).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('compose.localstack.yml', () => {
  const binary = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  const missing = binary.error !== undefined;
  if (missing) console.warn('docker-compose is not installed (.ci/run installs it): compose.localstack.yml is not validated here');

  it.skipIf(missing)(
    'is a valid compose file (docker-compose config, which needs no Docker engine) with LocalStack, Redis and the Upstash stand-in on one named network',
    () => {
      const run = spawnSync('docker-compose', ['-f', 'compose.localstack.yml', 'config'], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { ...process.env, LOCALSTACK_AUTH_TOKEN: '' },
      });
      expect(run.status, run.stderr).toBe(0);
      const config = run.stdout;
      for (const service of ['localstack:', 'redis:', 'upstash:']) expect(config).toContain(`\n  ${service}`);
      expect(config).toContain('LAMBDA_DOCKER_NETWORK: fcfs-localstack');
      expect(config).toMatch(/networks:\n {2}default:\n {4}name: fcfs-localstack/);
      expect(config).toContain('127.0.0.1:4566:4566');
      expect(config).toContain('/etc/localstack/init/ready.d/create-secrets.sh');
      expect(config).toContain('dockerfile: deploy/localstack/upstash-gateway.Dockerfile');
    },
  );
});
