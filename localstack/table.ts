import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceNotFoundException,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import schema from '../lib/ledger/table-schema.json' with { type: 'json' };

/**
 * Create the ledger table if it is missing, with the same schema serverless.yml deploys
 * (both read lib/ledger/table-schema.json). Returns true when it was created.
 */
export async function ensureTable(dynamo: DynamoDBClient, tableName: string): Promise<boolean> {
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    return false;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  await dynamo.send(new CreateTableCommand({ TableName: tableName, ...(schema as Omit<CreateTableCommandInput, 'TableName'>) }));
  return true;
}
