import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AppConfig } from '../config/schema.js';
import { AppStoreError, SOKETI_DYNAMO_NAMES, appFromRow, rowFromApp, type LookupField, type StoredApp } from './columns.js';
import type { AppStore } from './store.js';

export interface DynamoDbOptions {
  readonly table: string;
  /** Empty: the SDK's own (AWS_REGION, the shared config). */
  readonly region: string;
  /** Empty: AWS; set for DynamoDB Local, dynalite or a VPC endpoint. */
  readonly endpoint: string;
  readonly timeoutMs: number;
}

interface Index {
  readonly name: string;
  readonly attribute: string;
}

/**
 * Where a table keeps what is looked up. Ours (`apps init`): hash key `id`, indexes on `key`
 * (WebSocket) and `api_token` (native API). soketi's: hash key `AppId`, index `AppKeyIndex` on
 * `AppKey`, no API token index (a look-up by token scans), items written in soketi's spelling.
 */
interface Layout {
  readonly id: string;
  readonly key: Index;
  readonly apiToken: Index | undefined;
  /** The attribute names items are written with; undefined: ours. */
  readonly names: ReadonlySet<string> | undefined;
}

const KEY_INDEX: Index = { name: 'key-index', attribute: 'key' };
const API_TOKEN_INDEX: Index = { name: 'api_token-index', attribute: 'api_token' };
const OURS: Layout = { id: 'id', key: KEY_INDEX, apiToken: API_TOKEN_INDEX, names: undefined };

const SOKETI: Layout = {
  id: 'AppId',
  key: { name: 'AppKeyIndex', attribute: 'AppKey' },
  apiToken: undefined,
  names: SOKETI_DYNAMO_NAMES,
};

/** Pages of a full scan (list): a bound, as every loop has one. */
const MAX_SCAN_PAGES = 1_000;

/**
 * Apps as DynamoDB items, attribute names as the SQL columns; or a soketi table as it is (its
 * hash key `AppId` tells, see Layout). Keys and API tokens are found through global secondary
 * indexes, which DynamoDB does not keep unique: insert checks them first (two racing inserts of
 * one key can both pass).
 */
export class DynamoDbAppStore implements AppStore {
  readonly kind = 'dynamodb';
  private readonly raw: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;
  private layoutRead: Promise<Layout> | undefined;

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

  /** The table's layout, read once from its key schema (a failed read is tried again on the next call). */
  private layout(): Promise<Layout> {
    this.layoutRead ??= this.raw.send(new DescribeTableCommand({ TableName: this.options.table })).then(
      ({ Table }) => (Table?.KeySchema?.some((k) => k.KeyType === 'HASH' && k.AttributeName === SOKETI.id) ? SOKETI : OURS),
      (err: unknown) => {
        this.layoutRead = undefined;
        throw err;
      },
    );
    return this.layoutRead;
  }

  async init(): Promise<void> {
    try {
      await this.layout();
      return;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
    const index = (i: Index): { IndexName: string; KeySchema: { AttributeName: string; KeyType: 'HASH' }[]; Projection: { ProjectionType: 'ALL' } } => ({
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
          { AttributeName: KEY_INDEX.attribute, AttributeType: 'S' },
          { AttributeName: API_TOKEN_INDEX.attribute, AttributeType: 'S' },
        ],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [index(KEY_INDEX), index(API_TOKEN_INDEX)],
      }),
    );
  }

  async find(by: LookupField, value: string): Promise<StoredApp | undefined> {
    const layout = await this.layout();
    if (by === 'id') {
      const { Item } = await this.doc.send(new GetCommand({ TableName: this.options.table, Key: { [layout.id]: value }, ConsistentRead: true }));
      return Item ? appFromRow(Item) : undefined;
    }
    const index = layout[by];
    if (!index) return this.scanFor(API_TOKEN_INDEX.attribute, value);
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

  /** A look-up the table has no index for (an API token in a soketi table): a filtered scan. */
  private async scanFor(attribute: string, value: string): Promise<StoredApp | undefined> {
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < MAX_SCAN_PAGES; page++) {
      const result = await this.doc.send(
        new ScanCommand({
          TableName: this.options.table,
          FilterExpression: '#a = :v',
          ExpressionAttributeNames: { '#a': attribute },
          ExpressionAttributeValues: { ':v': value },
          ExclusiveStartKey: start,
        }),
      );
      if (result.Items?.[0]) return appFromRow(result.Items[0]);
      start = result.LastEvaluatedKey;
      if (!start) break;
    }
    return undefined;
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
    const layout = await this.layout();
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.options.table,
          Item: itemOf(app, layout),
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': layout.id },
        }),
      );
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
    const layout = await this.layout();
    try {
      await this.doc.send(
        new PutCommand({ TableName: this.options.table, Item: itemOf(app, layout), ConditionExpression: 'attribute_exists(#id)', ExpressionAttributeNames: { '#id': layout.id } }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  async remove(id: string): Promise<boolean> {
    const layout = await this.layout();
    const { Attributes } = await this.doc.send(new DeleteCommand({ TableName: this.options.table, Key: { [layout.id]: id }, ReturnValues: 'ALL_OLD' }));
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
function itemOf(app: AppConfig, layout: Layout): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rowFromApp(app, layout.names)).filter(([, v]) => v !== null));
}
