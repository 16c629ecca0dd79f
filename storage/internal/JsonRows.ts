/**
 * Reads carried as JSON inside one statement. Context assembly needs several reads that are
 * statements of their own elsewhere (a contact, its open objections, a recall, a graph
 * neighbourhood, a stored vector…). Sent as one SELECT whose columns are the JSON of each
 * read's rows, they cost one message, one round trip and one pass through the driver and
 * @effect/sql instead of one each, which is most of what a small read costs the process.
 *
 * JSON carries the column types of these reads as the driver gives them — text, booleans,
 * numbers (a float8 is printed the same way in JSON as in text) and jsonb — except
 * timestamps, byte strings and the float8 values JSON has no number for (NaN, ±Infinity,
 * written as strings): `timestamp`, `bytes` and `float` turn those back into what the driver
 * makes of their text, with the driver's own parsers, so a read decodes to the same values
 * whichever way it travelled.
 */
import type { SqlClient, Statement } from "@effect/sql"
import { Effect } from "effect"
import Pg from "pg"

/** One read as a parenthesised scalar subquery of a JSON value, and how to decode that value. */
export interface JsonRead<A, E = never> {
  readonly json: Statement.Fragment
  readonly decode: (json: unknown) => Effect.Effect<A, E>
}

/**
 * The rows of `select` as one JSON array (`[]` when there are none), aggregated in `order`
 * (an ORDER BY list over the select's output columns, qualified by `r`): an aggregate does
 * not promise to keep the order of its input, so the order is spelled out again.
 */
export const rows = (sql: SqlClient.SqlClient, select: Statement.Fragment, order: Statement.Fragment): Statement.Fragment =>
  sql`(SELECT coalesce(json_agg(r ORDER BY ${order}), '[]') FROM (${select}) r)`

/** The first row of `select` as a JSON object, or null when it has none. */
export const row = (sql: SqlClient.SqlClient, select: Statement.Fragment): Statement.Fragment =>
  sql`(SELECT to_json(r) FROM (${select}) r LIMIT 1)`

/** The decoded values of a set of reads. */
export type ValuesOf<Reads extends Readonly<Record<string, JsonRead<any, any>>>> = {
  readonly [K in keyof Reads]: Reads[K] extends JsonRead<infer A, any> ? A : never
}

/** The decoding error of a set of reads. */
export type ErrorOf<Reads extends Readonly<Record<string, JsonRead<any, any>>>> = Reads[keyof Reads] extends JsonRead<any, infer E> ? E : never

/**
 * A value a read takes: bound as a parameter, or an expression over the statement the read
 * is sent in (a column of the callers' arguments in `each`), so that one statement text
 * serves any number of callers.
 */
export type Arg<A> = A | Statement.Fragment

/** One argument of the callers of `each`: its column name, its Postgres type and one value per caller. */
export interface ArgColumn {
  readonly name: string
  readonly type: "text" | "timestamptz"
  readonly values: ReadonlyArray<unknown>
}

/**
 * The same reads for several callers as one statement: the callers' arguments are arrays
 * unnested into rows `a` (one per caller, numbered `a.i`), and `reads` builds the reads once,
 * over those columns (`column("contact_id")`). One row of JSON columns comes back per caller,
 * in their order, each decoded on its own, so a value one caller cannot decode fails only
 * that caller. The text does not depend on how many callers there are: a connection plans it
 * once (reads written out once per caller made a text per batch size, each about seven
 * subqueries longer per caller; sixteen callers took 17 ms to plan on an idle server). A read
 * that uses no column of `a` runs once for the statement (an uncorrelated subquery).
 */
export const each = <const Reads extends Readonly<Record<string, JsonRead<any, any>>>>(
  sql: SqlClient.SqlClient,
  args: ReadonlyArray<ArgColumn>,
  reads: (column: (name: string) => Statement.Fragment) => Reads
): {
  readonly statement: Statement.Statement<Record<string, unknown>>
  readonly decodeAt: (rows: ReadonlyArray<Record<string, unknown>>, index: number) => Effect.Effect<ValuesOf<Reads>, ErrorOf<Reads>>
} => {
  const set = reads((name) => sql`a.${sql(name)}`)
  const arrays = sql.csv(args.map((c) => sql`${c.values}::${sql.literal(c.type)}[]`))
  const names = sql.csv(args.map((c) => sql`${sql(c.name)}`))
  const columns = sql.csv(Object.keys(set).map((name) => sql`${set[name]!.json} AS ${sql(name)}`))
  return {
    statement: sql<Record<string, unknown>>`SELECT ${columns} FROM unnest(${arrays}) WITH ORDINALITY AS a(${names}, i) ORDER BY a.i`,
    decodeAt: (rows, index) => {
      const out: Record<string, unknown> = {}
      return Effect.as(
        Effect.forEach(
          Object.keys(set),
          (name) => Effect.map(set[name]!.decode(rows[index]?.[name] ?? null), (a) => void (out[name] = a)),
          { discard: true }
        ),
        out as ValuesOf<Reads>
      )
    }
  }
}

const parseTimestamptz = Pg.types.getTypeParser(1184)
const parseBytea = Pg.types.getTypeParser(17)
const parseFloat8 = Pg.types.getTypeParser(701)

/**
 * A timestamptz of a JSON row (`YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM`) as the driver reads it
 * from its text (`YYYY-MM-DD HH:MM:SS.ffffff+HH`); anything else as it is.
 */
export const timestamp = (value: unknown): unknown =>
  typeof value === "string" ? parseTimestamptz(value.replace("T", " ")) : value

/** A float8 of a JSON row: a number, or the text of NaN or ±Infinity, as the driver reads it. */
export const float = (value: unknown): unknown => (typeof value === "string" ? parseFloat8(value) : value)

/** A bytea of a JSON row (the `\x…` hex of its text) as the driver reads it: a `Buffer`. */
export const bytes = (value: unknown): unknown => (typeof value === "string" ? parseBytea(value) : value)
