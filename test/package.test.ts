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
  let template: { Conditions: Record<string, unknown>; Outputs: Record<string, unknown> };
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
    template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
    resources = (template as unknown as { Resources: Record<string, Resource> }).Resources;
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

  describe('alarms and the drop dashboard (deploy/observability.cjs)', () => {
    const alarms = () => Object.fromEntries(ofType('AWS::CloudWatch::Alarm').map(([id, r]) => [id, r.Properties]));
    const ownDimensions = [
      { Name: 'service', Value: 'fcfs-coupons' },
      { Name: 'stage', Value: 'prod' },
    ];

    it('alarms on the 5xx rate, dead letters, persist lag p99 above 2 s, lasting ledger throttling, and Lambda errors and throttles', () => {
      const a = alarms();
      expect(a.Api5xxRateAlarm).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanThreshold' });
      const rate = a.Api5xxRateAlarm.Metrics as { Id: string; Expression?: string; MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] } } }[];
      expect(rate.find((m) => m.Id === 'rate')?.Expression).toBe('IF(requests >= 100, 100 * errors / requests, 0)');
      expect(rate.filter((m) => m.MetricStat).map((m) => [m.MetricStat!.Metric.Namespace, m.MetricStat!.Metric.MetricName, m.MetricStat!.Metric.Dimensions])).toEqual([
        ['AWS/ApiGateway', '5xx', [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }, { Name: 'Stage', Value: '$default' }]],
        ['AWS/ApiGateway', 'Count', [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }, { Name: 'Stage', Value: '$default' }]],
      ]);
      expect(a.DeadLettersAlarm).toMatchObject({ Namespace: 'fcfs-coupons', MetricName: 'DrainDeadLettered', Dimensions: ownDimensions, Statistic: 'Sum', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
      expect(a.PersistLagAlarm).toMatchObject({ Namespace: 'fcfs-coupons', MetricName: 'PersistLag', Dimensions: ownDimensions, ExtendedStatistic: 'p99', Threshold: 2000, ComparisonOperator: 'GreaterThanThreshold', Period: 60 });
      expect(a.LedgerThrottlesAlarm).toMatchObject({ Namespace: 'fcfs-coupons', MetricName: 'LedgerThrottles', Dimensions: ownDimensions, EvaluationPeriods: 2, DatapointsToAlarm: 2 });
      for (const fn of ['Issue', 'Drain', 'Restore']) {
        for (const metric of ['Errors', 'Throttles']) {
          expect(a[`${fn}${metric}Alarm`]).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: metric, Dimensions: [{ Name: 'FunctionName', Value: { Ref: `${fn}LambdaFunction` } }], Threshold: 1 });
          expect(resources[`${fn}LambdaFunction`]).toBeDefined();
        }
      }
      for (const properties of Object.values(a)) expect(properties.TreatMissingData).toBe('notBreaching');
      // Every metric of our namespace that an alarm reads is one the handlers emit (lib/metrics.ts).
      const emitted = readFileSync(join(PROJECT_ROOT, 'lib', 'metrics.ts'), 'utf8');
      for (const properties of Object.values(a)) if (properties.Namespace === 'fcfs-coupons') expect(emitted).toContain(`'${properties.MetricName}'`);
    });

    it('notifies an existing topic (ALARM_TOPIC_ARN) or a created one with an email subscription (ALARM_EMAIL), else nobody', () => {
      expect(template.Conditions).toMatchObject({ HasAlarmEmail: { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] }, HasAlarmTopicArn: { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] } });
      expect(resources.AlarmTopic).toMatchObject({ Type: 'AWS::SNS::Topic', Condition: 'HasAlarmEmail' });
      expect(resources.AlarmTopicSubscription).toMatchObject({ Type: 'AWS::SNS::Subscription', Condition: 'HasAlarmEmail', Properties: { Protocol: 'email' } });
      for (const properties of Object.values(alarms())) {
        expect(properties.AlarmActions).toEqual({ 'Fn::If': ['HasAlarmTopicArn', [''], { 'Fn::If': ['HasAlarmEmail', [{ Ref: 'AlarmTopic' }], { Ref: 'AWS::NoValue' }] }] });
        expect(properties.OKActions).toEqual(properties.AlarmActions);
      }
    });

    it('builds a dashboard whose body is valid JSON once CloudFormation joins it, showing every alarm and the drop\'s metrics', () => {
      const dashboard = resources.DropDashboard!;
      expect(dashboard.Type).toBe('AWS::CloudWatch::Dashboard');
      const parts = (dashboard.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
      // What CloudFormation would make of the Refs: a name, an ARN, a region.
      const text = parts
        .map((part) => {
          if (typeof part === 'string') return part;
          const ref = (part as { Ref?: string }).Ref;
          if (ref === 'AWS::Region') return 'eu-west-1';
          if (ref) expect(resources[ref], `Ref ${ref}`).toBeDefined();
          const getAtt = (part as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
          if (getAtt) expect(resources[getAtt[0]]?.Type).toBe('AWS::CloudWatch::Alarm');
          return ref ? `resolved-${ref}` : `arn:aws:cloudwatch:eu-west-1:123456789012:alarm:${getAtt![0]}`;
        })
        .join('');
      const body = JSON.parse(text) as { widgets: { type: string; properties: { alarms?: string[]; metrics?: unknown[][]; region?: string } }[] };
      const alarmWidget = body.widgets.find((w) => w.type === 'alarm')!;
      expect(alarmWidget.properties.alarms!.map((arn) => arn.split(':alarm:')[1]).sort()).toEqual(Object.keys(alarms()).sort());
      const metrics = body.widgets.flatMap((w) => w.properties.metrics ?? []);
      const named = new Set(metrics.map((m) => `${m[0]}/${m[1]}`));
      for (const name of ['DecisionAccepted', 'DecisionSoldOut', 'PersistLag', 'DrainIssued', 'DrainDeadLettered', 'LedgerThrottles', 'RedisLatency', 'ColdStart', 'AnsweredWithoutRedis']) expect(named).toContain(`fcfs-coupons/${name}`);
      for (const name of ['AWS/ApiGateway/5xx', 'AWS/Lambda/Throttles', 'AWS/DynamoDB/ThrottledRequests', 'AWS/DynamoDB/ConsumedWriteCapacityUnits']) expect(named).toContain(name);
      for (const widget of body.widgets.filter((w) => w.type === 'metric')) expect(widget.properties.region).toBe('eu-west-1');
      expect(template.Outputs).toHaveProperty('DropDashboardUrl');
    });
  });
});

/** Package as a deployed stage would be by default: AUTH_MODE unset. */
function withoutAuthMode(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { AUTH_MODE: _unset, ...rest } = env;
  return rest;
}
