/**
 * One IAM role per group of functions, each allowed only what its functions call, derived from the code:
 * - issue (lib/issue-runtime.ts): its Upstash secret; GetItem of a coupon Redis lost (DynamoCouponReader);
 *   invokes the drain (a winner with no drain running) and the restore function (RemoteRestorer);
 * - reads (lib/runtime.ts getReadRuntime): its Upstash secret; GetItem (coupon views, RemoteRestorer) and
 *   Query on the user index; invokes the restore function; never writes the ledger;
 * - admin: both secrets; the ledger's item and query actions on the table (create, reconcile, its
 *   in-process restore); invokes the drain (requeue, reconcile);
 * - the admin authorizer: the admin secret only; the catch-all route's function: nothing;
 * - the live view (adminLive): both secrets, GetItem on the table; the operator page: nothing;
 * - restore: its Upstash secret; GetItem, UpdateItem (the epoch) and Query on the table;
 * - drain: its Upstash secret; GetItem, PutItem and UpdateItem (TransactWriteItems is authorized per
 *   action it holds), Query (a schedule's restore); invokes itself (hand-over).
 * Restore and drain also send their failed asynchronous invocations to the failures queue (Lambda
 * sends to an on-failure destination with the function's own role).
 * Every function writes its own log group (the framework creates the groups).
 * serverless.yml names each function's role; test/deploy.test.ts checks both agree.
 */
const GROUPS = {
  IssueRole: {
    functions: ['issue'],
    secrets: ['upstash'],
    table: ['dynamodb:GetItem'],
    invoke: ['drain', 'restore'],
  },
  ReadRole: {
    functions: ['userCoupon', 'userCoupons', 'coupon'],
    secrets: ['upstash'],
    table: ['dynamodb:GetItem'],
    index: ['dynamodb:Query'],
    invoke: ['restore'],
  },
  AdminRole: {
    functions: ['adminCreateCoupon', 'adminGetCoupon', 'adminReconcile', 'adminDeadLetters', 'adminRequeueDeadLetters'],
    secrets: ['upstash', 'admin'],
    table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
    invoke: ['drain'],
  },
  AdminAuthorizerRole: { functions: ['adminAuthorizer'], secrets: ['admin'] },
  // The live view reads Redis and the coupon's ledger item; it writes nothing and invokes nothing.
  AdminLiveRole: { functions: ['adminLive'], secrets: ['upstash', 'admin'], table: ['dynamodb:GetItem'] },
  // The operator page is static: it only writes its log.
  PageRole: { functions: ['adminPage'] },
  NotFoundRole: { functions: ['notFound'] },
  RestoreRole: {
    functions: ['restore'],
    secrets: ['upstash'],
    table: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
    failures: true,
  },
  DrainRole: {
    functions: ['drain'],
    secrets: ['upstash'],
    table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
    invoke: ['drain'],
    failures: true,
  },
};

const arn = (service, rest) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:${service}:\${AWS::Region}:\${AWS::AccountId}:${rest}` });

module.exports = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const secretIds = {
    upstash: await resolveVariable('param:upstashSecretId'),
    admin: await resolveVariable('param:adminTokenSecretId'),
  };
  const functionName = (name) => `${service}-${stage}-${name}`;

  const Resources = {};
  for (const [logicalId, group] of Object.entries(GROUPS)) {
    const statements = [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: group.functions.map((name) => arn('logs', `log-group:/aws/lambda/${functionName(name)}:*`)),
      },
    ];
    if (group.secrets) {
      statements.push({
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue'],
        // A secret's ARN ends in "-" and six random characters: exactly six, not a wildcard.
        Resource: group.secrets.map((secret) => arn('secretsmanager', `secret:${secretIds[secret]}-??????`)),
      });
    }
    if (group.table) {
      statements.push({ Effect: 'Allow', Action: group.table, Resource: [{ 'Fn::GetAtt': ['LedgerTable', 'Arn'] }] });
    }
    if (group.index) {
      statements.push({ Effect: 'Allow', Action: group.index, Resource: [{ 'Fn::Join': ['/', [{ 'Fn::GetAtt': ['LedgerTable', 'Arn'] }, 'index', 'GSI1']] }] });
    }
    if (group.invoke) {
      statements.push({
        Effect: 'Allow',
        Action: ['lambda:InvokeFunction'],
        Resource: group.invoke.map((name) => arn('lambda', `function:${functionName(name)}`)),
      });
    }
    if (group.failures) {
      statements.push({ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [{ 'Fn::GetAtt': ['AsyncFailuresQueue', 'Arn'] }] });
    }
    Resources[logicalId] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] }],
        },
        Policies: [{ PolicyName: `${logicalId}-policy`, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
      },
    };
  }
  return { Resources };
};

module.exports.GROUPS = GROUPS;
