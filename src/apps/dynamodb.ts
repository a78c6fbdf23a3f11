import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AppConfig } from '../config/schema.js';
import { AppStoreError, appFromRow, rowFromApp, type LookupField, type StoredApp } from './columns.js';
import type { AppStore } from './store.js';

export interface DynamoDbOptions {
  readonly table: string;
  /** Empty: the SDK's own (AWS_REGION, the shared config). */
  readonly region: string;
  /** Empty: AWS; set for DynamoDB Local, dynalite or a VPC endpoint. */
  readonly endpoint: string;
  readonly timeoutMs: number;
}

/** Index names `apps init` creates: items are found by key (WebSocket) and API token (native API). */
const INDEX: Record<Exclude<LookupField, 'id'>, { name: string; attribute: string }> = {
  key: { name: 'key-index', attribute: 'key' },
  apiToken: { name: 'api_token-index', attribute: 'api_token' },
};

/** Pages of a full scan (list): a bound, as every loop has one. */
const MAX_SCAN_PAGES = 1_000;

/**
 * Apps as DynamoDB items, attribute names as the SQL columns. The table's hash key is `id`;
 * keys and API tokens are found through global secondary indexes, which DynamoDB does not keep
 * unique: insert checks them first (two racing inserts of one key can both pass).
 */
export class DynamoDbAppStore implements AppStore {
  readonly kind = 'dynamodb';
  private readonly raw: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;

  constructor(private readonly options: DynamoDbOptions) {
    this.raw = new DynamoDBClient({
      ...(options.region ? { region: options.region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      // A slow table counts as down: fail within the timeout rather than retry past it.
      maxAttempts: 1,
      requestHandler: { requestTimeout: options.timeoutMs, connectionTimeout: options.timeoutMs },
    });
    this.doc = DynamoDBDocumentClient.from(this.raw, { marshallOptions: { removeUndefinedValues: true } });
  }

  async init(): Promise<void> {
    try {
      await this.raw.send(new DescribeTableCommand({ TableName: this.options.table }));
      return;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
    const index = (i: { name: string; attribute: string }): { IndexName: string; KeySchema: { AttributeName: string; KeyType: 'HASH' }[]; Projection: { ProjectionType: 'ALL' } } => ({
      IndexName: i.name,
      KeySchema: [{ AttributeName: i.attribute, KeyType: 'HASH' }],
      Projection: { ProjectionType: 'ALL' },
    });
    await this.raw.send(
      new CreateTableCommand({
        TableName: this.options.table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'id', AttributeType: 'S' },
          { AttributeName: INDEX.key.attribute, AttributeType: 'S' },
          { AttributeName: INDEX.apiToken.attribute, AttributeType: 'S' },
        ],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [index(INDEX.key), index(INDEX.apiToken)],
      }),
    );
  }

  async find(by: LookupField, value: string): Promise<StoredApp | undefined> {
    if (by === 'id') {
      const { Item } = await this.doc.send(new GetCommand({ TableName: this.options.table, Key: { id: value }, ConsistentRead: true }));
      return Item ? appFromRow(Item) : undefined;
    }
    const index = INDEX[by];
    const { Items } = await this.doc.send(
      new QueryCommand({
        TableName: this.options.table,
        IndexName: index.name,
        KeyConditionExpression: '#k = :v',
        ExpressionAttributeNames: { '#k': index.attribute },
        ExpressionAttributeValues: { ':v': value },
        Limit: 1,
      }),
    );
    return Items?.[0] ? appFromRow(Items[0]) : undefined;
  }

  async list(): Promise<StoredApp[]> {
    const found: StoredApp[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < MAX_SCAN_PAGES; page++) {
      const result = await this.doc.send(new ScanCommand({ TableName: this.options.table, ExclusiveStartKey: start }));
      for (const item of result.Items ?? []) found.push(appFromRow(item));
      start = result.LastEvaluatedKey;
      if (!start) break;
    }
    return found.sort((a, b) => (idOf(a) < idOf(b) ? -1 : 1));
  }

  async insert(app: AppConfig): Promise<void> {
    for (const by of ['key', 'apiToken'] as const) {
      const value = app[by];
      if (value !== undefined && (await this.find(by, value))) throw new AppStoreError('an app with this id, key or API token exists already', 409);
    }
    try {
      await this.doc.send(new PutCommand({ TableName: this.options.table, Item: itemOf(app), ConditionExpression: 'attribute_not_exists(id)' }));
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') throw new AppStoreError('an app with this id, key or API token exists already', 409);
      throw err;
    }
  }

  async replace(app: AppConfig): Promise<boolean> {
    for (const by of ['key', 'apiToken'] as const) {
      const value = app[by];
      const other = value === undefined ? undefined : await this.find(by, value);
      if (other && idOf(other) !== app.id) throw new AppStoreError('another app has this key or API token', 409);
    }
    try {
      await this.doc.send(new PutCommand({ TableName: this.options.table, Item: itemOf(app), ConditionExpression: 'attribute_exists(id)' }));
      return true;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  async remove(id: string): Promise<boolean> {
    const { Attributes } = await this.doc.send(new DeleteCommand({ TableName: this.options.table, Key: { id }, ReturnValues: 'ALL_OLD' }));
    return Attributes !== undefined;
  }

  async close(): Promise<void> {
    this.raw.destroy();
  }
}

function idOf(stored: StoredApp): string {
  return stored.ok ? stored.app.id : stored.id;
}

/** NULLs are left out: an index key attribute must be a string or absent. */
function itemOf(app: AppConfig): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rowFromApp(app, undefined)).filter(([, v]) => v !== null));
}
