/**
 * The packaging-time half of serverless.yml (`serverless package` and `serverless deploy`):
 * - refuses, with one sentence, settings that contradict each other, the functions' timeouts or the
 *   account's concurrency (deploy/settings-check.ts, the same checks `npm start` makes);
 * - applies custom.concurrency (reserved and provisioned concurrency per function) and
 *   custom.throttles (API Gateway's per-route throttling), which need numbers the environment gives as
 *   text, and route keys only the compiled template knows.
 * `serverless offline` runs none of this: the local stack has no concurrency or throttles to apply.
 */
import { tsImport } from 'tsx/esm/api';

const ROOT_URL = new URL('../', import.meta.url);

export default class DeploySettings {
  constructor(serverless, options) {
    this.serverless = serverless;
    // Here, not in a hook: osls validates the configuration before any hook, and an empty issuer or
    // audience stops it with "unsupported string format" at a path, not a sentence saying what to set.
    this.requireJwtSettings(options);
    this.hooks = {
      // Before anything is bundled: a refusal costs no build.
      'before:package:cleanup': () => this.checkAndApply(),
      'before:aws:package:finalize:stripNullPropsFromTemplateResources': () => this.applyThrottles(),
    };
  }

  /**
   * A stage whose user routes verify tokens (authMode jwt) needs an issuer and an audience: deployed
   * stages take them from JWT_ISSUER_URL and JWT_AUDIENCE, the local stage has defaults of its own.
   * Checked here because params are resolved only after plugins are constructed, and the configuration
   * is validated before any hook runs; so the params are read as serverless.yml writes them.
   */
  requireJwtSettings(options) {
    // serverless.yml's provider.stage defaults to local when --stage is not given.
    const configured = this.serverless.service.provider?.stage;
    const stage = options?.stage ?? (typeof configured === 'string' && !configured.includes('${') ? configured : 'local');
    const param = (name) => this.paramOf(stage, name, options);
    const authMode = param('authMode') ?? 'jwt';
    if (authMode !== 'jwt' && authMode !== 'none') {
      this.refuse(`AUTH_MODE must be jwt (user routes verify tokens) or none (they trust the path's user id), got "${authMode}" for stage ${stage}.`);
    }
    if (authMode !== 'jwt') return;
    const missing = [
      ['JWT_ISSUER_URL', 'jwtIssuerUrl'],
      ['JWT_AUDIENCE', 'jwtAudience'],
    ]
      .filter(([, name]) => !param(name))
      .map(([variable]) => variable);
    if (missing.length === 0) return;
    this.refuse(
      `Set ${missing.join(' and ')} to package or deploy stage ${stage}: its user routes verify tokens (AUTH_MODE=jwt), ` +
        `JWT_ISSUER_URL being your identity provider's issuer (serving /.well-known/openid-configuration) and JWT_AUDIENCE the audience of its tokens; see docs/deploy.md.`,
    );
  }

  /**
   * A param of the stage as the framework will resolve it: `--param name=value` first, then serverless.yml's
   * params for the stage, else its default, each either a literal or `${env:NAME, 'fallback'}` (resolved
   * here from the environment the same way). Undefined when serverless.yml names no such param.
   */
  paramOf(stage, name, options) {
    const given = [options?.param ?? []].flat().find((entry) => typeof entry === 'string' && entry.startsWith(`${name}=`));
    if (given) return given.slice(name.length + 1).trim();
    const params = this.serverless.configurationInput?.params ?? {};
    const raw = params[stage]?.[name] ?? params.default?.[name];
    if (typeof raw !== 'string') return undefined;
    const fromEnv = /^\$\{env:([A-Za-z0-9_]+),\s*(['"])(.*)\2\}$/.exec(raw.trim());
    return fromEnv ? process.env[fromEnv[1]]?.trim() || fromEnv[3] : raw.trim();
  }

  refuse(sentence) {
    throw new this.serverless.classes.Error(sentence);
  }

  async checkAndApply() {
    const check = await tsImport('./deploy/settings-check.ts', ROOT_URL.href);
    const service = this.serverless.service;
    const provider = service.provider;
    const custom = service.custom ?? {};

    for (const retired of ['API_THROTTLE_RATE', 'API_THROTTLE_BURST']) {
      if (process.env[retired])
        this.refuse(`${retired} is no longer read: the API's throttles are per route now (THROTTLE_ISSUE_RATE, THROTTLE_READ_RATE, ... see docs/deploy.md).`);
    }

    const capacity = this.capacity(custom.concurrency ?? {});
    for (const [name, reserved] of Object.entries(capacity.reserved)) {
      if (reserved !== undefined) service.getFunction(name).reservedConcurrency = reserved;
    }
    for (const [name, provisioned] of Object.entries(capacity.provisioned)) {
      if (provisioned) service.getFunction(name).provisionedConcurrency = provisioned;
    }

    const timeouts = Object.fromEntries(service.getAllFunctions().map((name) => [name, service.getFunction(name).timeout ?? provider.timeout ?? 6]));
    const problems = [
      ...check.environmentContradictions({ ...provider.environment, AWS_REGION: provider.region }, timeouts),
      ...check.capacityContradictions(capacity),
      ...this.deploymentContradictions(custom),
    ];
    if (problems.length > 0) this.refuse(problems[0]);
  }

  /** custom.concurrency: whole numbers, or "none" (the function stays in the unreserved pool). */
  capacity(concurrency) {
    const count = (value, what) => {
      const text = String(value ?? '').trim();
      if (text === '' || text === 'none') return undefined;
      if (!/^\d{1,6}$/.test(text)) this.refuse(`${what} must be a whole number or "none", got "${text}".`);
      return Number(text);
    };
    const perFunction = (table, kind) =>
      Object.fromEntries(
        Object.entries(table ?? {}).map(([name, value]) => {
          this.serverless.service.getFunction(name); // throws for a function that does not exist
          return [name, count(value, `The ${kind} concurrency of ${name}`)];
        }),
      );
    return {
      account: count(concurrency.account, 'ACCOUNT_CONCURRENCY') ?? 1_000,
      reserved: perFunction(concurrency.reserved, 'reserved'),
      provisioned: perFunction(concurrency.provisioned, 'provisioned'),
    };
  }

  deploymentContradictions(custom) {
    const problems = [];
    const httpApi = this.serverless.service.provider.httpApi ?? {};
    const origins = httpApi.cors ? [...httpApi.cors.allowedOrigins] : [];
    for (const origin of origins) {
      if (origin !== '*' && !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i.test(origin)) {
        problems.push(`CORS_ALLOWED_ORIGINS holds "${origin}", which is not an origin (scheme, host and port only, e.g. https://shop.example.com).`);
      }
    }
    for (const [name, throttle] of Object.entries(custom.throttles ?? {})) {
      for (const key of ['rate', 'burst']) {
        if (!/^\d{1,7}$/.test(String(throttle[key] ?? '').trim())) {
          problems.push(`The ${name} routes' throttle ${key} must be a whole number of requests, got "${throttle[key]}".`);
        }
      }
    }
    return problems;
  }

  /**
   * custom.throttles: each class's rate and burst on every route of its functions, and the tightest
   * class as the stage's default (a route added later without a class gets the smallest budget). The
   * stage names routes by key, so it must be created after them.
   */
  applyThrottles() {
    const service = this.serverless.service;
    const resources = service.provider.compiledCloudFormationTemplate.Resources;
    const stage = resources.HttpApiStage;
    if (!stage) return;
    const classOf = new Map();
    const settings = {};
    for (const [name, throttle] of Object.entries(service.custom?.throttles ?? {})) {
      settings[name] = { ThrottlingRateLimit: Number(throttle.rate), ThrottlingBurstLimit: Number(throttle.burst) };
      for (const fn of throttle.functions ?? []) classOf.set(fn, name);
    }
    const routeSettings = {};
    const routes = [];
    for (const [logicalId, resource] of Object.entries(resources)) {
      if (resource.Type !== 'AWS::ApiGatewayV2::Route') continue;
      const fn = this.functionOfRoute(resource.Properties.RouteKey);
      const name = classOf.get(fn);
      if (!name) this.refuse(`The route ${resource.Properties.RouteKey} (function ${fn}) has no throttle: add ${fn} to one of custom.throttles.`);
      routeSettings[resource.Properties.RouteKey] = settings[name];
      routes.push(logicalId);
    }
    const tightest = Object.values(settings).sort((a, b) => a.ThrottlingRateLimit - b.ThrottlingRateLimit)[0];
    if (tightest) stage.Properties.DefaultRouteSettings = { ...tightest };
    stage.Properties.RouteSettings = routeSettings;
    stage.DependsOn = [...new Set([...[stage.DependsOn ?? []].flat(), ...routes])];
  }

  functionOfRoute(routeKey) {
    const service = this.serverless.service;
    for (const name of service.getAllFunctions()) {
      for (const event of service.getFunction(name).events ?? []) {
        const http = event.httpApi;
        if (!http) continue;
        const key = typeof http === 'string' ? (http === '*' ? '$default' : http) : `${String(http.method).toUpperCase()} ${http.path}`;
        if (key === routeKey) return name;
      }
    }
    return undefined;
  }
}
