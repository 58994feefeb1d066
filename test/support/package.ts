import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../localstack/processes.js';

export type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string | string[] };

export const SERVERLESS = join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js');

/** The environment of `serverless package --stage prod` as a deployment would run it, plus the given settings. */
function packageEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...withoutDeploySettings(process.env),
    SLS_TELEMETRY_DISABLED: '1',
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_PROFILE: '',
    JWT_ISSUER_URL: 'https://issuer.example.com',
    JWT_AUDIENCE: 'fcfs-coupons-prod',
    // Its own bundle folder: packaging cleans it up, which must not touch a running local stack's.
    ESBUILD_WORK_FOLDER: `.esbuild-package-${process.pid}`,
    ...settings,
  };
}

/** `serverless package --stage prod`, offline, with the given settings; the compiled template's resources. */
export function packageStage(dir: string, settings: Record<string, string>): { resources: Record<string, Resource>; template: Template } {
  execFileSync(process.execPath, [SERVERLESS, 'package', '--stage', 'prod', '--package', dir], {
    cwd: PROJECT_ROOT,
    env: packageEnv(settings),
    stdio: 'pipe',
    timeout: 120_000,
  });
  const template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
  return { resources: template.Resources, template };
}

export interface Template {
  readonly Resources: Record<string, Resource>;
  readonly Conditions: Record<string, unknown>;
  readonly Outputs: Record<string, unknown>;
}

/** `serverless package --stage prod` expected to fail: its exit status and output. */
export function packageRefusal(dir: string, settings: Record<string, string>): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [SERVERLESS, 'package', '--stage', 'prod', '--package', dir], {
    cwd: PROJECT_ROOT,
    env: packageEnv(settings),
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Package as a deployed stage would be by default: no deploy-time settings from the developer's shell. */
function withoutDeploySettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const deploySettings =
    /^(AUTH_MODE|CORS_ALLOWED_ORIGINS|ACCOUNT_CONCURRENCY|[A-Z_]*_CONCURRENCY|THROTTLE_[A-Z_]+|API_THROTTLE_[A-Z]+|DRAIN_[A-Z_]+|REDIS_[A-Z_]+|LEDGER_[A-Z_]+|REBUILD_WAIT_MS|ALARM_EMAIL|ALARM_TOPIC_ARN)$/;
  return Object.fromEntries(Object.entries(env).filter(([name]) => !deploySettings.test(name)));
}

/** The API's routes as serverless.yml declares them: every route, then catch-alls for every method but OPTIONS and HEAD. */
export const API_ROUTES = [
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
  ...['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].flatMap((method) => [`${method} /`, `${method} /{proxy+}`]),
];
