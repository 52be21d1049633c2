// Prints the Pothos schema as SDL. Run by codegen.ts in a child process so that the
// schema and graphql-js load natively (ESM) rather than through codegen's TS loader,
// which would pair Pothos with a second, CommonJS copy of graphql.
import { printSchema } from 'graphql';
import { schema } from '../src/schema/index.ts';

process.stdout.write(printSchema(schema));
