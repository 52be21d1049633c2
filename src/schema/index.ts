import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.ts';
import './scalars.ts';
import './error.ts';
import './user.ts';
import './batch.ts';
import './upload.ts';
import './upload-media.ts';
import './search.ts';
import './progress.ts';

export const schema = lexicographicSortSchema(builder.toSchema());
