import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { PROJECT_ROOT } from '../localstack/processes.js';
import { API_ROUTES, packageStage, type Resource, type Template } from './support/package.js';

const { GROUPS } = createRequire(import.meta.url)('../deploy/roles.cjs') as { GROUPS: Record<string, { functions: string[] }> };

/** `serverless package` works offline and yields what the deployment needs. */
describe('serverless package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-package-'));
  let resources: Record<string, Resource>;
  let template: Template;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const fn = (name: string) => resources[`${name.charAt(0).toUpperCase()}${name.slice(1)}LambdaFunction`]!.Properties;
  const routes = () => Object.fromEntries(ofType('AWS::ApiGatewayV2::Route').map(([, r]) => [r.Properties.RouteKey as string, r.Properties]));

  beforeAll(() => {
    ({ resources, template } = packageStage(dir, {
      CORS_ALLOWED_ORIGINS: 'https://shop.example.com, https://m.shop.example.com',
      ISSUE_PROVISIONED_CONCURRENCY: '100',
    }));
  }, 150_000);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(PROJECT_ROOT, `.esbuild-package-${process.pid}`), { recursive: true, force: true });
  });

  it('declares every HTTP API route, and catch-all routes for every method but OPTIONS and HEAD', () => {
    expect(Object.keys(routes()).sort()).toEqual([...API_ROUTES].sort());
  });

  it('lets API Gateway answer browsers: CORS from the configured origins, and no route that takes a preflight', () => {
    expect(resources.HttpApi!.Properties.CorsConfiguration).toEqual({
      AllowOrigins: ['https://shop.example.com', 'https://m.shop.example.com'],
      AllowMethods: ['GET', 'POST'],
      AllowHeaders: ['authorization', 'content-type'],
      ExposeHeaders: ['retry-after'],
      MaxAge: 600,
    });
    // $default and ANY routes would catch OPTIONS (http-api-cors), and a preflight would invoke Lambda.
    for (const key of Object.keys(routes())) expect(key).not.toMatch(/^(\$default|ANY |OPTIONS )/);
  });

  it('has no CORS configuration unless origins are configured (deploy/cors.cjs)', async () => {
    const cors = createRequire(import.meta.url)('../deploy/cors.cjs') as (input: { resolveVariable: (name: string) => Promise<unknown> }) => Promise<unknown>;
    const withOrigins = (origins: string) => cors({ resolveVariable: async (name) => (name === 'param:corsAllowedOrigins' ? origins : undefined) });
    expect(await withOrigins('')).toBe(false);
    expect(await withOrigins(' , ')).toBe(false);
    expect(await withOrigins('https://a.example, https://b.example:8443')).toMatchObject({ allowedOrigins: ['https://a.example', 'https://b.example:8443'] });
  });

  it('guards the user routes with the JWT authorizer and the admin routes with the admin token authorizer', () => {
    const authorizers = Object.fromEntries(ofType('AWS::ApiGatewayV2::Authorizer').map(([id, r]) => [id, r.Properties]));
    expect(
      Object.values(authorizers)
        .map((a) => a.AuthorizerType)
        .sort(),
    ).toEqual(['JWT', 'REQUEST']);
    expect(authorizers.HttpApiAuthorizerUserJwt).toMatchObject({
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://issuer.example.com', Audience: ['fcfs-coupons-prod'] },
    });
    expect(authorizers.HttpApiAuthorizerAdminToken).toMatchObject({
      IdentitySource: ['$request.header.Authorization'],
      EnableSimpleResponses: true,
      AuthorizerResultTtlInSeconds: 300,
      AuthorizerUri: expect.objectContaining({
        'Fn::Join': expect.arrayContaining([expect.arrayContaining([{ 'Fn::GetAtt': ['AdminAuthorizerLambdaFunction', 'Arn'] }])]),
      }),
    });
    for (const [key, route] of Object.entries(routes())) {
      if (key.includes('/api/v2/users/')) expect(route, key).toMatchObject({ AuthorizationType: 'JWT', AuthorizerId: { Ref: 'HttpApiAuthorizerUserJwt' } });
      else if (key.includes('/api/v2/admin/'))
        expect(route, key).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: 'HttpApiAuthorizerAdminToken' } });
      else expect(route.AuthorizationType, key).toBeUndefined();
    }
    const functions = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties.Environment.Variables);
    expect(new Set(functions.map((env) => env.AUTH_MODE))).toEqual(new Set(['jwt']));
  });

  it('throttles each route by its class, admin and unknown routes far below the issue route, the tightest as the default', () => {
    const stage = resources.HttpApiStage!;
    const settings = stage.Properties.RouteSettings as Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }>;
    expect(Object.keys(settings).sort()).toEqual(Object.keys(routes()).sort());
    expect(settings['POST /api/v2/users/{userId}/coupons/{couponId}/issue']).toEqual({ ThrottlingRateLimit: 10_000, ThrottlingBurstLimit: 5_000 });
    expect(settings['GET /api/v2/users/{userId}/coupons/{couponId}']).toEqual({ ThrottlingRateLimit: 1_000, ThrottlingBurstLimit: 500 });
    expect(settings['GET /api/v2/coupons/{couponId}']).toEqual({ ThrottlingRateLimit: 1_000, ThrottlingBurstLimit: 500 });
    expect(settings['POST /api/v2/admin/coupons/{couponId}/reconcile']).toEqual({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 });
    expect(settings['GET /{proxy+}']).toEqual({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 });
    // The live operator page asks twice a second per viewer.
    expect(settings['GET /api/v2/admin/coupons/{couponId}/live']).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
    expect(settings['GET /admin']).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
    expect(stage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 });
    // Everything but the issue route together stays well inside the account's 10,000/s.
    const others = Object.entries(settings)
      .filter(([key]) => !key.endsWith('/issue'))
      .reduce((sum, [, s]) => sum + s.ThrottlingRateLimit, 0);
    expect(others).toBe(3 * 1_000 + 5 * 10 + 2 * 50 + 10 * 20);
    // The stage names routes by key: CloudFormation must create them first.
    const routeIds = ofType('AWS::ApiGatewayV2::Route').map(([id]) => id);
    expect([stage.DependsOn].flat()).toEqual(expect.arrayContaining(routeIds));
  });

  it('reserves concurrency for the drain, restore, admin and catch-all functions, and caps the issue function below the pool', () => {
    const reserved = Object.fromEntries(
      ofType('AWS::Lambda::Function').map(([id, r]) => [id.replace(/LambdaFunction$/, ''), r.Properties.ReservedConcurrentExecutions]),
    );
    expect(reserved).toEqual({
      Issue: 600,
      UserCoupon: undefined,
      UserCoupons: undefined,
      Coupon: undefined,
      AdminCreateCoupon: 2,
      AdminGetCoupon: 2,
      AdminReconcile: 2,
      AdminDeadLetters: 2,
      AdminRequeueDeadLetters: 2,
      AdminAuthorizer: 2,
      AdminLive: 2,
      AdminPage: 2,
      NotFound: 5,
      Restore: 5,
      Drain: 10,
    });
    const total = Object.values(reserved).reduce<number>((sum, n) => sum + (n ?? 0), 0);
    // AWS's default pool is 1,000 and at least 100 must stay unreserved (the read functions live there).
    expect(1_000 - total).toBeGreaterThanOrEqual(100);
  });

  it('provisions the issue function through an alias that API Gateway calls, when asked to (ISSUE_PROVISIONED_CONCURRENCY)', () => {
    const aliases = ofType('AWS::Lambda::Alias').map(([, r]) => r.Properties);
    expect(aliases).toEqual([
      expect.objectContaining({
        FunctionName: { Ref: 'IssueLambdaFunction' },
        Name: 'provisioned',
        ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 100 },
      }),
    ]);
    expect(resources.HttpApiIntegrationIssue!.Properties.IntegrationUri).toEqual({
      'Fn::Join': [':', [{ 'Fn::GetAtt': ['IssueLambdaFunction', 'Arn'] }, 'provisioned']],
    });
  });

  it("bounds the drain's and the restore's asynchronous invocations and sends their failures to a queue", () => {
    const configs = Object.fromEntries(ofType('AWS::Lambda::EventInvokeConfig').map(([, r]) => [r.Properties.FunctionName.Ref, r.Properties]));
    const toQueue = { OnFailure: { Destination: { 'Fn::GetAtt': ['AsyncFailuresQueue', 'Arn'] } } };
    expect(configs).toEqual({
      DrainLambdaFunction: {
        FunctionName: { Ref: 'DrainLambdaFunction' },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 120,
        DestinationConfig: toQueue,
      },
      RestoreLambdaFunction: {
        FunctionName: { Ref: 'RestoreLambdaFunction' },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 60,
        DestinationConfig: toQueue,
      },
    });
    expect(resources.AsyncFailuresQueue).toMatchObject({
      Type: 'AWS::SQS::Queue',
      Properties: { QueueName: 'fcfs-coupons-prod-async-failures', MessageRetentionPeriod: 1_209_600 },
    });
    // Lambda sends to an on-failure destination with the function's role.
    for (const role of ['DrainRole', 'RestoreRole']) {
      const statements = resources[role]!.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
      expect(statements).toContainEqual({ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [{ 'Fn::GetAtt': ['AsyncFailuresQueue', 'Arn'] }] });
    }
  });

  it('lets the drain hand over to itself without Lambda stopping the chain, and gives the schedule a short retry policy', () => {
    expect(fn('drain').RecursiveLoop).toBe('Allow');
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' });
    expect(rules[0]!.Targets).toEqual([
      {
        Id: 'drainSchedule',
        Arn: { 'Fn::GetAtt': ['DrainLambdaFunction', 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 60 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['AsyncFailuresQueue', 'Arn'] } },
      },
    ]);
    // EventBridge may write to the queue for this rule only.
    const [statement] = resources.AsyncFailuresQueuePolicy!.Properties.PolicyDocument.Statement;
    expect(statement).toMatchObject({
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': ['DrainEventsRuleSchedule1', 'Arn'] } } },
    });
  });

  it('creates the ledger table with string keys PK/SK, the GSI1 index, deletion protection and point-in-time recovery', () => {
    const table = resources.LedgerTable!;
    expect(table.Type).toBe('AWS::DynamoDB::Table');
    expect(table).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(table.Properties).toMatchObject({
      TableName: 'fcfs-coupons-prod',
      DeletionProtectionEnabled: true,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      KeySchema: [
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' },
      ],
    });
    expect(table.Properties.GlobalSecondaryIndexes[0]).toMatchObject({
      IndexName: 'GSI1',
      KeySchema: [
        { AttributeName: 'GSI1PK', KeyType: 'HASH' },
        { AttributeName: 'GSI1SK', KeyType: 'RANGE' },
      ],
    });
  });

  it("runs every function on nodejs22.x with JSON logs, Lambda's own lines at WARN, its secrets named, never inlined", () => {
    const functions = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties);
    expect(functions).toHaveLength(15);
    for (const fn of functions) {
      expect(fn.Runtime).toBe('nodejs22.x');
      expect(fn.LoggingConfig).toEqual({ LogFormat: 'JSON', SystemLogLevel: 'WARN', ApplicationLogLevel: 'DEBUG' });
      const env = fn.Environment.Variables;
      expect(env.UPSTASH_REDIS_REST_TOKEN).toBe('');
      expect(env.ADMIN_TOKEN).toBe('');
      expect(env.UPSTASH_SECRET_ID).toBe('fcfs-coupons/prod/upstash');
      expect(env.ADMIN_TOKEN_SECRET_ID).toBe('fcfs-coupons/prod/admin');
      expect(env.DYNAMODB_ENDPOINT).toBe('');
      // The bundles carry no source maps, so the runtime is not asked to read them.
      expect(env.NODE_OPTIONS ?? '').not.toContain('--enable-source-maps');
    }
  });

  it("gives the API functions timeouts under API Gateway's 30 s, and the drain and restore two minutes", () => {
    const timeouts = Object.fromEntries(ofType('AWS::Lambda::Function').map(([id, r]) => [id.replace(/LambdaFunction$/, ''), r.Properties.Timeout]));
    expect(timeouts).toMatchObject({
      Issue: 15,
      UserCoupon: 16,
      UserCoupons: 16,
      Coupon: 16,
      AdminReconcile: 25,
      AdminAuthorizer: 5,
      NotFound: 3,
      Drain: 120,
      Restore: 120,
    });
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
    loadConfig(
      new Proxy(deployed, {
        get: (target, name: string) => {
          read.add(name);
          return target[name];
        },
      }),
    );
    // The SSM parameters of earlier versions (*_PARAM) are read only to refuse them.
    const settings = [...read, 'LOG_LEVEL' /* lib/log.ts */].filter((name) => !name.startsWith('AWS_') && !name.endsWith('_PARAM'));
    expect(settings).toEqual(
      expect.arrayContaining([
        'REDIS_RETRIES',
        'REDIS_DEADLINE_MS',
        'LEDGER_READ_ATTEMPTS',
        'DRAIN_STOP_BEFORE_TIMEOUT_MS',
        'UPSTASH_SECRET_ID',
        'ADMIN_TOKEN_SECRET_ID',
      ]),
    );
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      const passed = Object.keys(fn.Properties.Environment.Variables);
      expect(settings.filter((name) => !passed.includes(name))).toEqual([]);
    }
  });

  it('gives each function a role of its own group that allows only what it calls, with exact actions on exact resources', () => {
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
    const policy = (role: string) =>
      resources[role]!.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement) as { Action: string[]; Resource: unknown[] }[];
    const allowed = (role: string) => {
      const grants: Record<string, string[]> = {};
      for (const statement of policy(role)) {
        for (const action of statement.Action) grants[action] = [...(grants[action] ?? []), ...statement.Resource.map((r) => JSON.stringify(r))];
      }
      return grants;
    };
    const actions = (role: string) =>
      Object.keys(allowed(role))
        .filter((a) => !a.startsWith('logs:'))
        .sort();
    const table = JSON.stringify({ 'Fn::GetAtt': ['LedgerTable', 'Arn'] });

    // Each function runs with its group's role, which may write exactly its functions' log groups.
    for (const [role, group] of Object.entries(GROUPS)) {
      for (const name of group.functions) {
        expect(fn(name).Role, name).toEqual({ 'Fn::GetAtt': [role, 'Arn'] });
        expect(allowed(role)['logs:PutLogEvents']!.join()).toContain(`/aws/lambda/fcfs-coupons-prod-${name}:*`);
      }
      expect(allowed(role)['logs:PutLogEvents']).toHaveLength(group.functions.length);
    }
    for (const [role] of ofType('AWS::IAM::Role')) {
      for (const statement of policy(role)) {
        for (const action of statement.Action) expect(action).not.toContain('*');
        if (statement.Action.some((a) => a.startsWith('logs:'))) continue;
        expect(JSON.stringify(statement.Resource), role).not.toMatch(/"\*"|:\*"|\/\*"/);
      }
    }

    expect(actions('IssueRole')).toEqual(['dynamodb:GetItem', 'lambda:InvokeFunction', 'secretsmanager:GetSecretValue']);
    expect(allowed('IssueRole')['dynamodb:GetItem']).toEqual([table]);
    expect(allowed('IssueRole')['lambda:InvokeFunction']!.join()).toMatch(/function:fcfs-coupons-prod-drain".*function:fcfs-coupons-prod-restore"/);
    expect(allowed('IssueRole')['secretsmanager:GetSecretValue']!.join()).toBe(
      JSON.stringify({ 'Fn::Sub': 'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:fcfs-coupons/prod/upstash-??????' }),
    );

    // The public read functions: no ledger write, no admin secret, no drain.
    expect(actions('ReadRole')).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'lambda:InvokeFunction', 'secretsmanager:GetSecretValue']);
    expect(allowed('ReadRole')['dynamodb:Query']!.join()).toContain('GSI1');
    expect(allowed('ReadRole')['dynamodb:Query']!.join()).not.toBe(table);
    expect(allowed('ReadRole')['lambda:InvokeFunction']!.join()).not.toContain('-drain');
    expect(allowed('ReadRole')['secretsmanager:GetSecretValue']!.join()).not.toContain('/admin');

    expect(actions('AdminRole')).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'lambda:InvokeFunction',
      'secretsmanager:GetSecretValue',
    ]);
    expect(allowed('AdminRole')['secretsmanager:GetSecretValue']!.join()).toContain('fcfs-coupons/prod/admin-??????');
    expect(actions('AdminAuthorizerRole')).toEqual(['secretsmanager:GetSecretValue']);
    expect(allowed('AdminAuthorizerRole')['secretsmanager:GetSecretValue']!.join()).not.toContain('/upstash');
    expect(actions('NotFoundRole')).toEqual([]);
    expect(actions('RestoreRole')).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'secretsmanager:GetSecretValue', 'sqs:SendMessage']);
    expect(actions('DrainRole')).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'lambda:InvokeFunction',
      'secretsmanager:GetSecretValue',
      'sqs:SendMessage',
    ]);
    expect(allowed('DrainRole')['lambda:InvokeFunction']!.join()).toBe(
      JSON.stringify({ 'Fn::Sub': 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:fcfs-coupons-prod-drain' }),
    );
    for (const [role] of ofType('AWS::IAM::Role')) expect(JSON.stringify(policy(role))).not.toContain('ssm:');
  });

  it('packages each function separately as an ESM bundle with its Lua scripts inlined', () => {
    const zips = readdirSync(dir)
      .filter((f) => f.endsWith('.zip'))
      .sort();
    expect(zips).toEqual(
      [
        'adminAuthorizer',
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
    // Nor in the admin authorizer, which answers a token at most every few minutes per caller.
    const authorizer = execFileSync('unzip', ['-p', join(dir, 'adminAuthorizer.zip'), 'functions/admin-authorizer.mjs'], { encoding: 'utf8', maxBuffer: 50e6 });
    expect(authorizer).not.toMatch(/@aws-sdk\/client-|smithy/i);
  });

  describe('alarms and the drop dashboard (deploy/observability.cjs)', () => {
    const alarms = () => Object.fromEntries(ofType('AWS::CloudWatch::Alarm').map(([id, r]) => [id, r.Properties]));
    const ownDimensions = [
      { Name: 'service', Value: 'fcfs-coupons' },
      { Name: 'stage', Value: 'prod' },
    ];

    it('alarms on the 5xx rate, dead letters, persist lag p99 above 2 s, lasting ledger throttling, and Lambda errors and throttles', () => {
      const a = alarms();
      expect(a.Api5xxRateAlarm!).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanThreshold' });
      const rate = a.Api5xxRateAlarm!.Metrics as {
        Id: string;
        Expression?: string;
        MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] } };
      }[];
      expect(rate.find((m) => m.Id === 'rate')?.Expression).toBe('IF(requests >= 100, 100 * errors / requests, 0)');
      expect(
        rate.filter((m) => m.MetricStat).map((m) => [m.MetricStat!.Metric.Namespace, m.MetricStat!.Metric.MetricName, m.MetricStat!.Metric.Dimensions]),
      ).toEqual([
        [
          'AWS/ApiGateway',
          '5xx',
          [
            { Name: 'ApiId', Value: { Ref: 'HttpApi' } },
            { Name: 'Stage', Value: '$default' },
          ],
        ],
        [
          'AWS/ApiGateway',
          'Count',
          [
            { Name: 'ApiId', Value: { Ref: 'HttpApi' } },
            { Name: 'Stage', Value: '$default' },
          ],
        ],
      ]);
      expect(a.DeadLettersAlarm).toMatchObject({
        Namespace: 'fcfs-coupons',
        MetricName: 'DrainDeadLettered',
        Dimensions: ownDimensions,
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      expect(a.PersistLagAlarm).toMatchObject({
        Namespace: 'fcfs-coupons',
        MetricName: 'PersistLag',
        Dimensions: ownDimensions,
        ExtendedStatistic: 'p99',
        Threshold: 2000,
        ComparisonOperator: 'GreaterThanThreshold',
        Period: 60,
      });
      expect(a.LedgerThrottlesAlarm).toMatchObject({
        Namespace: 'fcfs-coupons',
        MetricName: 'LedgerThrottles',
        Dimensions: ownDimensions,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
      });
      for (const fn of ['Issue', 'Drain', 'Restore']) {
        for (const metric of ['Errors', 'Throttles']) {
          expect(a[`${fn}${metric}Alarm`]).toMatchObject({
            Namespace: 'AWS/Lambda',
            MetricName: metric,
            Dimensions: [{ Name: 'FunctionName', Value: { Ref: `${fn}LambdaFunction` } }],
            Threshold: 1,
          });
          expect(resources[`${fn}LambdaFunction`]).toBeDefined();
        }
      }
      for (const properties of Object.values(a)) expect(properties.TreatMissingData).toBe('notBreaching');
      // Every metric of our namespace that an alarm reads is one the handlers emit (lib/metrics.ts).
      const emitted = readFileSync(join(PROJECT_ROOT, 'lib', 'metrics.ts'), 'utf8');
      for (const properties of Object.values(a)) if (properties.Namespace === 'fcfs-coupons') expect(emitted).toContain(`'${properties.MetricName}'`);
    });

    it('notifies an existing topic (ALARM_TOPIC_ARN) or a created one with an email subscription (ALARM_EMAIL), else nobody', () => {
      expect(template.Conditions).toMatchObject({
        HasAlarmEmail: { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] },
        HasAlarmTopicArn: { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] },
      });
      expect(resources.AlarmTopic).toMatchObject({ Type: 'AWS::SNS::Topic', Condition: 'HasAlarmEmail' });
      expect(resources.AlarmTopicSubscription).toMatchObject({ Type: 'AWS::SNS::Subscription', Condition: 'HasAlarmEmail', Properties: { Protocol: 'email' } });
      for (const properties of Object.values(alarms())) {
        expect(properties.AlarmActions).toEqual({
          'Fn::If': ['HasAlarmTopicArn', [''], { 'Fn::If': ['HasAlarmEmail', [{ Ref: 'AlarmTopic' }], { Ref: 'AWS::NoValue' }] }],
        });
        expect(properties.OKActions).toEqual(properties.AlarmActions);
      }
    });

    it("builds a dashboard whose body is valid JSON once CloudFormation joins it, showing every alarm and the drop's metrics", () => {
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
      for (const name of [
        'DecisionAccepted',
        'DecisionSoldOut',
        'PersistLag',
        'DrainIssued',
        'DrainDeadLettered',
        'LedgerThrottles',
        'RedisLatency',
        'ColdStart',
        'AnsweredWithoutRedis',
      ])
        expect(named).toContain(`fcfs-coupons/${name}`);
      for (const name of ['AWS/ApiGateway/5xx', 'AWS/Lambda/Throttles', 'AWS/DynamoDB/ThrottledRequests', 'AWS/DynamoDB/ConsumedWriteCapacityUnits'])
        expect(named).toContain(name);
      for (const widget of body.widgets.filter((w) => w.type === 'metric')) expect(widget.properties.region).toBe('eu-west-1');
      expect(template.Outputs).toHaveProperty('DropDashboardUrl');
    });
  });
});
