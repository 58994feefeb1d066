import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { PROJECT_ROOT } from '../localstack/processes.js';

type Resource = { Type: string; Properties: Record<string, any> };

/** `serverless package` works offline and yields what the deployment needs. */
describe('serverless package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-package-'));
  let resources: Record<string, Resource>;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  beforeAll(() => {
    execFileSync(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'), 'package', '--stage', 'prod', '--package', dir], {
      cwd: PROJECT_ROOT,
      env: {
        ...withoutAuthMode(process.env),
        SLS_TELEMETRY_DISABLED: '1',
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: '',
        JWT_ISSUER_URL: 'https://issuer.example.com',
        JWT_AUDIENCE: 'fcfs-coupons-prod',
        // Its own bundle folder: packaging cleans it up, which must not touch a running local stack's.
        ESBUILD_WORK_FOLDER: `.esbuild-package-${process.pid}`,
      },
      stdio: 'pipe',
      timeout: 120_000,
    });
    const template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
    resources = template.Resources;
  }, 150_000);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(PROJECT_ROOT, `.esbuild-package-${process.pid}`), { recursive: true, force: true });
  });

  it('declares every HTTP API route, plus a default route for everything else', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey).sort();
    expect(routes).toEqual([
      '$default',
      'GET /admin',
      'GET /api/v2/admin/coupons/{couponId}',
      'GET /api/v2/admin/coupons/{couponId}/dead-letters',
      'GET /api/v2/admin/coupons/{couponId}/live',
      'GET /api/v2/coupons/{couponId}',
      'GET /api/v2/users/{userId}/coupons',
      'GET /api/v2/users/{userId}/coupons/{couponId}',
      'POST /api/v2/admin/coupons',
      'POST /api/v2/admin/coupons/{couponId}/dead-letters/requeue',
      'POST /api/v2/admin/coupons/{couponId}/reconcile',
      'POST /api/v2/users/{userId}/coupons/{couponId}/issue',
    ]);
  });

  it('puts the JWT authorizer on the user routes only (AUTH_MODE defaults to jwt when deployed)', () => {
    const authorizers = ofType('AWS::ApiGatewayV2::Authorizer').map(([, r]) => r.Properties);
    expect(authorizers).toHaveLength(1);
    expect(authorizers[0]).toMatchObject({
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://issuer.example.com', Audience: ['fcfs-coupons-prod'] },
    });
    const routes = Object.fromEntries(ofType('AWS::ApiGatewayV2::Route').map(([, r]) => [r.Properties.RouteKey, r.Properties.AuthorizationType]));
    expect(routes['POST /api/v2/users/{userId}/coupons/{couponId}/issue']).toBe('JWT');
    expect(routes['GET /api/v2/users/{userId}/coupons/{couponId}']).toBe('JWT');
    expect(routes['GET /api/v2/users/{userId}/coupons']).toBe('JWT');
    expect(routes['GET /api/v2/coupons/{couponId}']).toBeUndefined();
    expect(routes['POST /api/v2/admin/coupons']).toBeUndefined();
    const functions = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties.Environment.Variables);
    expect(new Set(functions.map((env) => env.AUTH_MODE))).toEqual(new Set(['jwt']));
  });

  it('throttles the API at the stage', () => {
    expect(resources.HttpApiStage?.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 10000, ThrottlingBurstLimit: 5000 });
  });

  it('schedules the drain every minute', () => {
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules).toHaveLength(1);
    expect(rules[0]?.ScheduleExpression).toBe('rate(1 minute)');
    expect(JSON.stringify(rules[0]?.Targets)).toContain('DrainLambdaFunction');
  });

  it('creates the ledger table with string keys PK/SK and the GSI1 index', () => {
    const table = resources.LedgerTable!;
    expect(table.Type).toBe('AWS::DynamoDB::Table');
    expect(table.Properties.TableName).toBe('fcfs-coupons-prod');
    expect(table.Properties.KeySchema).toEqual([
      { AttributeName: 'PK', KeyType: 'HASH' },
      { AttributeName: 'SK', KeyType: 'RANGE' },
    ]);
    expect(table.Properties.GlobalSecondaryIndexes[0]).toMatchObject({
      IndexName: 'GSI1',
      KeySchema: [
        { AttributeName: 'GSI1PK', KeyType: 'HASH' },
        { AttributeName: 'GSI1SK', KeyType: 'RANGE' },
      ],
    });
  });

  it('runs every function on nodejs22.x with its secrets named as Secrets Manager secrets, never inlined', () => {
    const functions = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties);
    expect(functions).toHaveLength(14);
    for (const fn of functions) {
      expect(fn.Runtime).toBe('nodejs22.x');
      const env = fn.Environment.Variables;
      expect(env.UPSTASH_REDIS_REST_TOKEN).toBe('');
      expect(env.ADMIN_TOKEN).toBe('');
      expect(env.UPSTASH_SECRET_ID).toBe('fcfs-coupons/prod/upstash');
      expect(env.ADMIN_TOKEN_SECRET_ID).toBe('fcfs-coupons/prod/admin');
      expect(env.DYNAMODB_ENDPOINT).toBe('');
    }
  });

  it('passes every setting the handlers read to every function, so each can be set at deploy time', () => {
    // The names loadConfig reads for a deployed stage, recorded through a proxy (Lambda sets AWS_*).
    const read = new Set<string>();
    const deployed: Record<string, string> = {
      STAGE: 'prod',
      AWS_REGION: 'us-east-1',
      TABLE_NAME: 't',
      UPSTASH_SECRET_ID: 'u',
      ADMIN_TOKEN_SECRET_ID: 'a',
    };
    loadConfig(new Proxy(deployed, { get: (target, name: string) => (read.add(name), target[name]) }));
    // The SSM parameters of earlier versions (*_PARAM) are read only to refuse them.
    const settings = [...read, 'LOG_LEVEL' /* lib/log.ts */].filter((name) => !name.startsWith('AWS_') && !name.endsWith('_PARAM'));
    expect(settings).toEqual(expect.arrayContaining(['REDIS_RETRIES', 'DRAIN_STOP_BEFORE_TIMEOUT_MS', 'UPSTASH_SECRET_ID', 'ADMIN_TOKEN_SECRET_ID']));
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      const passed = Object.keys(fn.Properties.Environment.Variables);
      expect(settings.filter((name) => !passed.includes(name))).toEqual([]);
    }
  });

  it('grants exact actions only, on the table ARN, the drain and restore functions and the secrets', () => {
    const [, role] = ofType('AWS::IAM::Role')[0]!;
    const statements = role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
    const appStatements = statements.filter((s: any) => [s.Action].flat().some((a: string) => /^(dynamodb|lambda|secretsmanager):/.test(a)));
    for (const statement of statements) {
      for (const action of [statement.Action].flat()) expect(action).not.toContain('*');
    }
    // No wildcard resource where an exact ARN fits.
    for (const statement of appStatements) expect(JSON.stringify(statement.Resource)).not.toMatch(/"\*"|:\*"|\/\*"/);
    const dynamo = appStatements.find((s: any) => s.Action.includes('dynamodb:PutItem'));
    expect(dynamo.Action.sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(JSON.stringify(dynamo.Resource)).toContain('LedgerTable');
    expect(JSON.stringify(dynamo.Resource)).not.toMatch(/"\*"/);
    const invoke = appStatements.find((s: any) => s.Action.includes('lambda:InvokeFunction'));
    expect(JSON.stringify(invoke.Resource)).toContain('fcfs-coupons-prod-drain');
    expect(JSON.stringify(invoke.Resource)).toContain('fcfs-coupons-prod-restore');
    const secrets = appStatements.find((s: any) => s.Action.includes('secretsmanager:GetSecretValue'));
    expect(JSON.stringify(secrets.Resource)).toContain('secret:fcfs-coupons/prod/upstash-??????');
    expect(statements.some((s: any) => [s.Action].flat().some((a: string) => a.startsWith('ssm:')))).toBe(false);
  });

  it('packages each function separately as an ESM bundle with its Lua scripts inlined', () => {
    const zips = readdirSync(dir).filter((f) => f.endsWith('.zip')).sort();
    expect(zips).toEqual(
      [
        'adminCreateCoupon',
        'adminDeadLetters',
        'adminGetCoupon',
        'adminLive',
        'adminPage',
        'adminReconcile',
        'adminRequeueDeadLetters',
        'coupon',
        'drain',
        'issue',
        'notFound',
        'restore',
        'userCoupon',
        'userCoupons',
      ].map((f) => `${f}.zip`),
    );
    const listing = execFileSync('unzip', ['-l', join(dir, 'issue.zip')], { encoding: 'utf8' });
    expect(listing).toContain('functions/issue.mjs');
    const bundle = execFileSync('unzip', ['-p', join(dir, 'issue.zip'), 'functions/issue.mjs'], { encoding: 'utf8', maxBuffer: 50e6 });
    expect(bundle).toContain('Admit one issue request');
    // No AWS SDK in the admission path: every new container imports this in a drop's opening second.
    expect(Buffer.byteLength(bundle)).toBeLessThanOrEqual(300 * 1024);
    expect(bundle).not.toMatch(/@aws-sdk\/client-|smithy/i);
  });
});

/** Package as a deployed stage would be by default: AUTH_MODE unset. */
function withoutAuthMode(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { AUTH_MODE: _unset, ...rest } = env;
  return rest;
}
