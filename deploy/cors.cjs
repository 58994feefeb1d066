/**
 * The HTTP API's CORS configuration from the stage's allowed origins (param corsAllowedOrigins, from
 * CORS_ALLOWED_ORIGINS): API Gateway then answers browsers' preflights itself, and adds the headers to
 * every answer for those origins. No origins: no CORS configuration (same-origin callers only, e.g.
 * behind CloudFront on the shop's own domain). deploy/plugin.mjs checks each is an origin.
 */
module.exports = async ({ resolveVariable }) => {
  const origins = String((await resolveVariable('param:corsAllowedOrigins')) ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  if (origins.length === 0) return false;
  return {
    allowedOrigins: origins,
    allowedHeaders: ['authorization', 'content-type'],
    allowedMethods: ['GET', 'POST'],
    // Browser code may read Retry-After of a 429 or 503.
    exposedResponseHeaders: ['retry-after'],
    maxAge: 600,
  };
};
