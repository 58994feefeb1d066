import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { OPERATOR_PAGE, OPERATOR_PAGE_HEADERS } from './operator-page.js';

/**
 * GET /admin: the live operator page. The page itself holds no data and needs no token; everything it
 * shows comes from the admin-protected live view, with the token the operator types in.
 */
export const handler = async (): Promise<APIGatewayProxyStructuredResultV2> => ({ statusCode: 200, headers: OPERATOR_PAGE_HEADERS, body: OPERATOR_PAGE });
