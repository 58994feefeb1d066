/**
 * Alarms, an optional notification topic and a dashboard for a drop: CloudFormation resources merged into
 * serverless.yml's `resources`. Every metric of the fcfs-coupons namespace is written by the handlers in
 * CloudWatch's embedded metric format (lib/metrics.ts) with the dimensions service and stage; the others
 * are API Gateway's, Lambda's and DynamoDB's own. docs/operations.md describes each alarm and what to do.
 *
 * Notifications: ALARM_TOPIC_ARN (an existing SNS topic) or ALARM_EMAIL (a topic is created with that
 * subscription; AWS mails a confirmation first). Neither: the alarms still show in the console and on
 * the dashboard.
 *
 * Built in JavaScript so that no CloudFormation `${...}` reaches the framework's variable resolver: the
 * dashboard body is joined from Refs.
 */
const NAMESPACE = 'fcfs-coupons';

/** Functions whose errors and throttles are alarmed on: the ones a drop depends on. */
const CRITICAL_FUNCTIONS = ['issue', 'drain', 'restore'];

const logicalId = (functionKey) => `${functionKey[0].toUpperCase()}${functionKey.slice(1)}LambdaFunction`;

module.exports = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const email = await resolveVariable("env:ALARM_EMAIL, ''");
  const topicArn = await resolveVariable("env:ALARM_TOPIC_ARN, ''");
  const name = (suffix) => `${service}-${stage}-${suffix}`;
  const dimensions = [
    { Name: 'service', Value: NAMESPACE },
    { Name: 'stage', Value: stage },
  ];
  const actions = {
    'Fn::If': ['HasAlarmTopicArn', [topicArn], { 'Fn::If': ['HasAlarmEmail', [{ Ref: 'AlarmTopic' }], { Ref: 'AWS::NoValue' }] }],
  };
  const alarm = (suffix, description, properties) => ({
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: name(suffix),
      AlarmDescription: `${description} See docs/operations.md#alarms.`,
      ActionsEnabled: true,
      AlarmActions: actions,
      OKActions: actions,
      TreatMissingData: 'notBreaching',
      ...properties,
    },
  });
  const own = (metricName, statistic, threshold, evaluationPeriods, description, extra = {}) =>
    alarm(metricName, description, {
      Namespace: NAMESPACE,
      MetricName: metricName,
      Dimensions: dimensions,
      Period: 60,
      ...(statistic.startsWith('p') ? { ExtendedStatistic: statistic } : { Statistic: statistic }),
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: evaluationPeriods,
      DatapointsToAlarm: evaluationPeriods,
      ...extra,
    });

  const Resources = {
    AlarmTopic: {
      Type: 'AWS::SNS::Topic',
      Condition: 'HasAlarmEmail',
      Properties: { TopicName: name('alarms') },
    },
    AlarmTopicSubscription: {
      Type: 'AWS::SNS::Subscription',
      Condition: 'HasAlarmEmail',
      Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: email },
    },
    Api5xxRateAlarm: alarm('api-5xx-rate', 'More than 1% of API requests answered 5xx in a minute (with at least 100 requests).', {
      Metrics: [
        { Id: 'errors', MetricStat: { Metric: apiMetric('5xx'), Period: 60, Stat: 'Sum' }, ReturnData: false },
        { Id: 'requests', MetricStat: { Metric: apiMetric('Count'), Period: 60, Stat: 'Sum' }, ReturnData: false },
        { Id: 'rate', Expression: 'IF(requests >= 100, 100 * errors / requests, 0)', Label: '5xx %', ReturnData: true },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
    }),
    DeadLettersAlarm: own(
      'DrainDeadLettered',
      'Sum',
      1,
      1,
      'The ledger refused winners too often: they are dead letters and wait for an operator (GET .../dead-letters, then requeue).',
    ),
    PersistLagAlarm: own('PersistLag', 'p99', 2000, 1, 'p99 of the time from acceptance to the ledger write above 2 s over a minute: the drain is behind.', {
      ComparisonOperator: 'GreaterThanThreshold',
    }),
    LedgerThrottlesAlarm: own(
      'LedgerThrottles',
      'Sum',
      1,
      2,
      'The ledger throttled drain writes in two consecutive minutes: single throttles are absorbed (the drain halves its batches), lasting ones mean a partition key is over its 1,000 WCU/s.',
    ),
  };
  for (const fn of CRITICAL_FUNCTIONS) {
    const id = logicalId(fn);
    for (const metric of ['Errors', 'Throttles']) {
      Resources[`${id.replace('LambdaFunction', '')}${metric}Alarm`] = alarm(
        `${fn}-${metric.toLowerCase()}`,
        `The ${fn} function had ${metric.toLowerCase()} in the last minute.`,
        {
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: id } }],
          Period: 60,
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          DatapointsToAlarm: 1,
        },
      );
    }
  }
  const alarmIds = Object.keys(Resources).filter((id) => id.endsWith('Alarm'));
  Resources.DropDashboard = {
    Type: 'AWS::CloudWatch::Dashboard',
    Properties: { DashboardName: name('drop'), DashboardBody: dashboardBody(stage, alarmIds) },
  };

  return {
    Conditions: {
      HasAlarmEmail: { 'Fn::Not': [{ 'Fn::Equals': [email, ''] }] },
      HasAlarmTopicArn: { 'Fn::Not': [{ 'Fn::Equals': [topicArn, ''] }] },
    },
    Resources,
    Outputs: {
      DropDashboardUrl: {
        Description: 'The CloudWatch dashboard for a drop',
        Value: {
          'Fn::Join': ['', ['https://console.aws.amazon.com/cloudwatch/home?region=', { Ref: 'AWS::Region' }, '#dashboards:name=', { Ref: 'DropDashboard' }]],
        },
      },
    },
  };
};

/** An HTTP API metric of this stack's API ($default stage). */
function apiMetric(metricName) {
  return {
    Namespace: 'AWS/ApiGateway',
    MetricName: metricName,
    Dimensions: [
      { Name: 'ApiId', Value: { Ref: 'HttpApi' } },
      { Name: 'Stage', Value: '$default' },
    ],
  };
}

/**
 * The dashboard as CloudWatch's JSON, with the API id, function names, table name, region and alarm
 * ARNs joined in from Refs. Placeholders "@ref:<LogicalId>@" and "@region@" in the JSON become those.
 */
function dashboardBody(stage, alarmIds) {
  const own = (metric, label, stat = 'Sum') => [NAMESPACE, metric, 'service', NAMESPACE, 'stage', stage, { label, stat }];
  const fn = (metric, functionKey, stat = 'Sum') => [
    'AWS/Lambda',
    metric,
    'FunctionName',
    `@ref:${logicalId(functionKey)}@`,
    { label: `${functionKey} ${metric.toLowerCase()}`, stat },
  ];
  const api = (metric, label, stat = 'Sum') => ['AWS/ApiGateway', metric, 'ApiId', '@ref:HttpApi@', 'Stage', '$default', { label, stat }];
  const table = (metric, label, stat = 'Sum') => ['AWS/DynamoDB', metric, 'TableName', '@ref:LedgerTable@', { label, stat }];
  const widget = (x, y, width, title, metrics, extra = {}) => ({
    type: 'metric',
    x,
    y,
    width,
    height: 6,
    properties: { title, region: '@region@', period: 60, view: 'timeSeries', metrics, ...extra },
  });
  const body = {
    start: '-PT3H',
    widgets: [
      {
        type: 'alarm',
        x: 0,
        y: 0,
        width: 24,
        height: 3,
        properties: { title: 'Alarms', alarms: alarmIds.map((id) => `@arn:${id}@`) },
      },
      widget(
        0,
        3,
        12,
        'Decisions per minute, by answer',
        [
          own('DecisionAccepted', 'accepted'),
          own('DecisionAlreadyAccepted', 'already accepted'),
          own('DecisionSoldOut', 'sold out'),
          own('DecisionNotOpen', 'not open'),
          own('DecisionEnded', 'ended'),
          own('DecisionRateLimited', 'rate limited'),
          own('DecisionCouponNotFound', 'coupon not found'),
          own('Unavailable', 'failed (503/500)'),
        ],
        { stacked: true },
      ),
      widget(12, 3, 12, 'API requests and errors', [
        api('Count', 'requests'),
        api('4xx', '4xx'),
        api('5xx', '5xx'),
        own('AnsweredWithoutRedis', 'answered without Redis'),
      ]),
      widget(0, 9, 8, 'API latency (ms)', [api('Latency', 'p50', 'p50'), api('Latency', 'p99', 'p99'), own('RedisLatency', 'Redis p99', 'p99')]),
      widget(
        8,
        9,
        8,
        'Persist lag: accepted to ledger (ms)',
        [own('PersistLag', 'p50', 'p50'), own('PersistLag', 'p99', 'p99'), own('PersistLag', 'max', 'Maximum')],
        {
          annotations: { horizontal: [{ label: 'alarm', value: 2000 }] },
        },
      ),
      widget(16, 9, 8, 'Drain', [
        own('DrainIssued', 'issued'),
        own('DrainRedelivered', 'redelivered'),
        own('DrainRejected', 'rejected'),
        own('DrainDeadLettered', 'dead-lettered'),
        own('DrainStale', 'stale'),
      ]),
      widget(0, 15, 8, 'Ledger (DynamoDB)', [
        table('ConsumedWriteCapacityUnits', 'WCU consumed'),
        table('ConsumedReadCapacityUnits', 'RCU consumed'),
        table('ThrottledRequests', 'throttled requests'),
        own('LedgerThrottles', 'drain batches throttled'),
      ]),
      widget(8, 15, 8, 'Lambda concurrency and throttles', [
        fn('ConcurrentExecutions', 'issue', 'Maximum'),
        fn('ConcurrentExecutions', 'drain', 'Maximum'),
        fn('Throttles', 'issue'),
        fn('Throttles', 'drain'),
        own('ColdStart', 'cold starts'),
      ]),
      widget(16, 15, 8, 'Lambda errors and duration', [fn('Errors', 'issue'), fn('Errors', 'drain'), fn('Errors', 'restore'), fn('Duration', 'issue', 'p99')]),
    ],
  };
  // Split the JSON at the placeholders (inside their quotes, which stay) and join Refs in between.
  const parts = JSON.stringify(body).split(/@(ref:[A-Za-z0-9]+|arn:[A-Za-z0-9]+|region)@/);
  const joined = parts.map((part, i) => {
    if (i % 2 === 0) return part;
    if (part === 'region') return { Ref: 'AWS::Region' };
    const [kind, id] = part.split(':');
    return kind === 'arn' ? { 'Fn::GetAtt': [id, 'Arn'] } : { Ref: id };
  });
  return { 'Fn::Join': ['', joined] };
}
