/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  mutation CreateBatchMedia($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n        }\n        duplicates {\n          filename\n          existingUploadId\n          existingUpload {\n            id\n            filename\n          }\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        duplicates {\n          filename\n          existingUploadId\n        }\n      }\n    }\n  }\n": typeof types.CreateBatchMediaDocument,
    "\n  fragment UploadMediaFields on Upload {\n    id\n    filename\n    kind\n    status\n    attempts\n    errorMessage\n    mimeType\n    byteSize\n    sha256\n    width\n    height\n    format\n    thumbnailUrl\n    previewUrl\n    placeholderHash\n    takenAt\n    camera {\n      make\n      model\n      lens\n      exposureTime\n      fNumber\n      iso\n      focalLength\n    }\n    location {\n      latitude\n      longitude\n    }\n    video {\n      durationSeconds\n      codec\n      frameRate\n    }\n    description\n    analysisStatus\n  }\n": typeof types.UploadMediaFieldsFragmentDoc,
    "\n  query BatchMedia($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      uploads(first: 100) {\n        edges {\n          node {\n            ...UploadMediaFields\n          }\n        }\n      }\n    }\n  }\n": typeof types.BatchMediaDocument,
    "\n  query UploadMedia($id: ID!) {\n    upload(id: $id) {\n      ...UploadMediaFields\n    }\n  }\n": typeof types.UploadMediaDocument,
    "\n  query SearchUploads($query: String!, $first: Int, $after: String) {\n    search(query: $query, first: $first, after: $after) {\n      edges {\n        cursor\n        score\n        node {\n          id\n          filename\n          description\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": typeof types.SearchUploadsDocument,
    "\n  query SimilarUploads($id: ID!, $first: Int) {\n    similarUploads(id: $id, first: $first) {\n      edges {\n        score\n        node {\n          id\n          filename\n        }\n      }\n    }\n  }\n": typeof types.SimilarUploadsDocument,
    "\n  mutation SignOut {\n    signOut\n  }\n": typeof types.SignOutDocument,
    "\n  mutation SignInRetry($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on Error {\n        code\n      }\n      ... on TooManyAttemptsError {\n        retryAfterSeconds\n      }\n    }\n  }\n": typeof types.SignInRetryDocument,
    "\n  query NodesById($ids: [ID!]!) {\n    nodes(ids: $ids) {\n      __typename\n      id\n    }\n  }\n": typeof types.NodesByIdDocument,
    "\n  query UploadsOfBatch($id: ID!) {\n    batch(id: $id) {\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            status\n            errorMessage\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n": typeof types.UploadsOfBatchDocument,
    "\n  query BatchesWithThumbnails {\n    batches(first: 10) {\n      edges {\n        node {\n          uploads(first: 20) {\n            edges {\n              node {\n                thumbnailUrl\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n": typeof types.BatchesWithThumbnailsDocument,
    "\n  query UploadFileUrls($id: ID!) {\n    upload(id: $id) {\n      thumbnailUrl\n      previewUrl\n    }\n  }\n": typeof types.UploadFileUrlsDocument,
    "\n  mutation SignUp($email: String!, $password: String!) {\n    signUp(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n        user {\n          id\n          email\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.SignUpDocument,
    "\n  mutation SignIn($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.SignInDocument,
    "\n  query Viewer {\n    viewer {\n      id\n      email\n    }\n  }\n": typeof types.ViewerDocument,
    "\n  mutation CreateBatch($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          status\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n    }\n  }\n": typeof types.CreateBatchDocument,
    "\n  query BatchDetails($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      totalUploads\n      processedUploads\n      successfulUploads\n      failedUploads\n      progressPercent\n      createdAt\n      startedAt\n      completedAt\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            byteSize\n            mimeType\n            status\n            attempts\n            errorMessage\n            width\n            height\n            format\n            description\n            analysisStatus\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n": typeof types.BatchDetailsDocument,
    "\n  query Batches($first: Int, $after: String) {\n    batches(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          totalUploads\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": typeof types.BatchesDocument,
    "\n  query UploadById($id: ID!) {\n    upload(id: $id) {\n      id\n      filename\n      thumbnailUrl\n    }\n  }\n": typeof types.UploadByIdDocument,
    "\n  query NodeById($id: ID!) {\n    node(id: $id) {\n      __typename\n      id\n    }\n  }\n": typeof types.NodeByIdDocument,
    "\n  subscription BatchProgress($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        batch {\n          id\n          status\n          processedUploads\n          successfulUploads\n          failedUploads\n          progressPercent\n        }\n      }\n      ... on FileProgress {\n        stage\n        percent\n        batch {\n          processedUploads\n        }\n        upload {\n          id\n          filename\n          status\n          attempts\n        }\n      }\n    }\n  }\n": typeof types.BatchProgressDocument,
    "\n  mutation CancelBatch($id: ID!) {\n    cancelBatch(id: $id) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.CancelBatchDocument,
    "\n  mutation RetryFailedUploads($batchId: ID!) {\n    retryFailedUploads(batchId: $batchId) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n          failedUploads\n          successfulUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.RetryFailedUploadsDocument,
    "\n  mutation DeleteUpload($id: ID!) {\n    deleteUpload(id: $id) {\n      __typename\n      ... on DeleteUploadSuccess {\n        deletedUploadId\n        batch {\n          totalUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.DeleteUploadDocument,
    "\n  subscription ProgressWithSeq($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        seq\n        batch {\n          status\n          processedUploads\n        }\n      }\n      ... on FileProgress {\n        seq\n        stage\n        upload {\n          id\n        }\n      }\n    }\n  }\n": typeof types.ProgressWithSeqDocument,
};
const documents: Documents = {
    "\n  mutation CreateBatchMedia($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n        }\n        duplicates {\n          filename\n          existingUploadId\n          existingUpload {\n            id\n            filename\n          }\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        duplicates {\n          filename\n          existingUploadId\n        }\n      }\n    }\n  }\n": types.CreateBatchMediaDocument,
    "\n  fragment UploadMediaFields on Upload {\n    id\n    filename\n    kind\n    status\n    attempts\n    errorMessage\n    mimeType\n    byteSize\n    sha256\n    width\n    height\n    format\n    thumbnailUrl\n    previewUrl\n    placeholderHash\n    takenAt\n    camera {\n      make\n      model\n      lens\n      exposureTime\n      fNumber\n      iso\n      focalLength\n    }\n    location {\n      latitude\n      longitude\n    }\n    video {\n      durationSeconds\n      codec\n      frameRate\n    }\n    description\n    analysisStatus\n  }\n": types.UploadMediaFieldsFragmentDoc,
    "\n  query BatchMedia($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      uploads(first: 100) {\n        edges {\n          node {\n            ...UploadMediaFields\n          }\n        }\n      }\n    }\n  }\n": types.BatchMediaDocument,
    "\n  query UploadMedia($id: ID!) {\n    upload(id: $id) {\n      ...UploadMediaFields\n    }\n  }\n": types.UploadMediaDocument,
    "\n  query SearchUploads($query: String!, $first: Int, $after: String) {\n    search(query: $query, first: $first, after: $after) {\n      edges {\n        cursor\n        score\n        node {\n          id\n          filename\n          description\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": types.SearchUploadsDocument,
    "\n  query SimilarUploads($id: ID!, $first: Int) {\n    similarUploads(id: $id, first: $first) {\n      edges {\n        score\n        node {\n          id\n          filename\n        }\n      }\n    }\n  }\n": types.SimilarUploadsDocument,
    "\n  mutation SignOut {\n    signOut\n  }\n": types.SignOutDocument,
    "\n  mutation SignInRetry($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on Error {\n        code\n      }\n      ... on TooManyAttemptsError {\n        retryAfterSeconds\n      }\n    }\n  }\n": types.SignInRetryDocument,
    "\n  query NodesById($ids: [ID!]!) {\n    nodes(ids: $ids) {\n      __typename\n      id\n    }\n  }\n": types.NodesByIdDocument,
    "\n  query UploadsOfBatch($id: ID!) {\n    batch(id: $id) {\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            status\n            errorMessage\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n": types.UploadsOfBatchDocument,
    "\n  query BatchesWithThumbnails {\n    batches(first: 10) {\n      edges {\n        node {\n          uploads(first: 20) {\n            edges {\n              node {\n                thumbnailUrl\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n": types.BatchesWithThumbnailsDocument,
    "\n  query UploadFileUrls($id: ID!) {\n    upload(id: $id) {\n      thumbnailUrl\n      previewUrl\n    }\n  }\n": types.UploadFileUrlsDocument,
    "\n  mutation SignUp($email: String!, $password: String!) {\n    signUp(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n        user {\n          id\n          email\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.SignUpDocument,
    "\n  mutation SignIn($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.SignInDocument,
    "\n  query Viewer {\n    viewer {\n      id\n      email\n    }\n  }\n": types.ViewerDocument,
    "\n  mutation CreateBatch($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          status\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n    }\n  }\n": types.CreateBatchDocument,
    "\n  query BatchDetails($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      totalUploads\n      processedUploads\n      successfulUploads\n      failedUploads\n      progressPercent\n      createdAt\n      startedAt\n      completedAt\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            byteSize\n            mimeType\n            status\n            attempts\n            errorMessage\n            width\n            height\n            format\n            description\n            analysisStatus\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n": types.BatchDetailsDocument,
    "\n  query Batches($first: Int, $after: String) {\n    batches(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          totalUploads\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": types.BatchesDocument,
    "\n  query UploadById($id: ID!) {\n    upload(id: $id) {\n      id\n      filename\n      thumbnailUrl\n    }\n  }\n": types.UploadByIdDocument,
    "\n  query NodeById($id: ID!) {\n    node(id: $id) {\n      __typename\n      id\n    }\n  }\n": types.NodeByIdDocument,
    "\n  subscription BatchProgress($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        batch {\n          id\n          status\n          processedUploads\n          successfulUploads\n          failedUploads\n          progressPercent\n        }\n      }\n      ... on FileProgress {\n        stage\n        percent\n        batch {\n          processedUploads\n        }\n        upload {\n          id\n          filename\n          status\n          attempts\n        }\n      }\n    }\n  }\n": types.BatchProgressDocument,
    "\n  mutation CancelBatch($id: ID!) {\n    cancelBatch(id: $id) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.CancelBatchDocument,
    "\n  mutation RetryFailedUploads($batchId: ID!) {\n    retryFailedUploads(batchId: $batchId) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n          failedUploads\n          successfulUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.RetryFailedUploadsDocument,
    "\n  mutation DeleteUpload($id: ID!) {\n    deleteUpload(id: $id) {\n      __typename\n      ... on DeleteUploadSuccess {\n        deletedUploadId\n        batch {\n          totalUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.DeleteUploadDocument,
    "\n  subscription ProgressWithSeq($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        seq\n        batch {\n          status\n          processedUploads\n        }\n      }\n      ... on FileProgress {\n        seq\n        stage\n        upload {\n          id\n        }\n      }\n    }\n  }\n": types.ProgressWithSeqDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateBatchMedia($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n        }\n        duplicates {\n          filename\n          existingUploadId\n          existingUpload {\n            id\n            filename\n          }\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        duplicates {\n          filename\n          existingUploadId\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateBatchMedia($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n        }\n        duplicates {\n          filename\n          existingUploadId\n          existingUpload {\n            id\n            filename\n          }\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        duplicates {\n          filename\n          existingUploadId\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment UploadMediaFields on Upload {\n    id\n    filename\n    kind\n    status\n    attempts\n    errorMessage\n    mimeType\n    byteSize\n    sha256\n    width\n    height\n    format\n    thumbnailUrl\n    previewUrl\n    placeholderHash\n    takenAt\n    camera {\n      make\n      model\n      lens\n      exposureTime\n      fNumber\n      iso\n      focalLength\n    }\n    location {\n      latitude\n      longitude\n    }\n    video {\n      durationSeconds\n      codec\n      frameRate\n    }\n    description\n    analysisStatus\n  }\n"): (typeof documents)["\n  fragment UploadMediaFields on Upload {\n    id\n    filename\n    kind\n    status\n    attempts\n    errorMessage\n    mimeType\n    byteSize\n    sha256\n    width\n    height\n    format\n    thumbnailUrl\n    previewUrl\n    placeholderHash\n    takenAt\n    camera {\n      make\n      model\n      lens\n      exposureTime\n      fNumber\n      iso\n      focalLength\n    }\n    location {\n      latitude\n      longitude\n    }\n    video {\n      durationSeconds\n      codec\n      frameRate\n    }\n    description\n    analysisStatus\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query BatchMedia($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      uploads(first: 100) {\n        edges {\n          node {\n            ...UploadMediaFields\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query BatchMedia($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      uploads(first: 100) {\n        edges {\n          node {\n            ...UploadMediaFields\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query UploadMedia($id: ID!) {\n    upload(id: $id) {\n      ...UploadMediaFields\n    }\n  }\n"): (typeof documents)["\n  query UploadMedia($id: ID!) {\n    upload(id: $id) {\n      ...UploadMediaFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SearchUploads($query: String!, $first: Int, $after: String) {\n    search(query: $query, first: $first, after: $after) {\n      edges {\n        cursor\n        score\n        node {\n          id\n          filename\n          description\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"): (typeof documents)["\n  query SearchUploads($query: String!, $first: Int, $after: String) {\n    search(query: $query, first: $first, after: $after) {\n      edges {\n        cursor\n        score\n        node {\n          id\n          filename\n          description\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SimilarUploads($id: ID!, $first: Int) {\n    similarUploads(id: $id, first: $first) {\n      edges {\n        score\n        node {\n          id\n          filename\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query SimilarUploads($id: ID!, $first: Int) {\n    similarUploads(id: $id, first: $first) {\n      edges {\n        score\n        node {\n          id\n          filename\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignOut {\n    signOut\n  }\n"): (typeof documents)["\n  mutation SignOut {\n    signOut\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignInRetry($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on Error {\n        code\n      }\n      ... on TooManyAttemptsError {\n        retryAfterSeconds\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignInRetry($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on Error {\n        code\n      }\n      ... on TooManyAttemptsError {\n        retryAfterSeconds\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query NodesById($ids: [ID!]!) {\n    nodes(ids: $ids) {\n      __typename\n      id\n    }\n  }\n"): (typeof documents)["\n  query NodesById($ids: [ID!]!) {\n    nodes(ids: $ids) {\n      __typename\n      id\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query UploadsOfBatch($id: ID!) {\n    batch(id: $id) {\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            status\n            errorMessage\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query UploadsOfBatch($id: ID!) {\n    batch(id: $id) {\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            status\n            errorMessage\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query BatchesWithThumbnails {\n    batches(first: 10) {\n      edges {\n        node {\n          uploads(first: 20) {\n            edges {\n              node {\n                thumbnailUrl\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query BatchesWithThumbnails {\n    batches(first: 10) {\n      edges {\n        node {\n          uploads(first: 20) {\n            edges {\n              node {\n                thumbnailUrl\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query UploadFileUrls($id: ID!) {\n    upload(id: $id) {\n      thumbnailUrl\n      previewUrl\n    }\n  }\n"): (typeof documents)["\n  query UploadFileUrls($id: ID!) {\n    upload(id: $id) {\n      thumbnailUrl\n      previewUrl\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignUp($email: String!, $password: String!) {\n    signUp(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n        user {\n          id\n          email\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignUp($email: String!, $password: String!) {\n    signUp(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n        user {\n          id\n          email\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignIn($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignIn($email: String!, $password: String!) {\n    signIn(email: $email, password: $password) {\n      __typename\n      ... on AuthSuccess {\n        token\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Viewer {\n    viewer {\n      id\n      email\n    }\n  }\n"): (typeof documents)["\n  query Viewer {\n    viewer {\n      id\n      email\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateBatch($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          status\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateBatch($files: [File!]!) {\n    createBatch(files: $files) {\n      __typename\n      ... on CreateBatchSuccess {\n        batch {\n          id\n          status\n          totalUploads\n        }\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n      ... on NoAcceptableFilesError {\n        code\n        message\n        rejectedFiles {\n          filename\n          code\n          message\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query BatchDetails($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      totalUploads\n      processedUploads\n      successfulUploads\n      failedUploads\n      progressPercent\n      createdAt\n      startedAt\n      completedAt\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            byteSize\n            mimeType\n            status\n            attempts\n            errorMessage\n            width\n            height\n            format\n            description\n            analysisStatus\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query BatchDetails($id: ID!) {\n    batch(id: $id) {\n      id\n      status\n      totalUploads\n      processedUploads\n      successfulUploads\n      failedUploads\n      progressPercent\n      createdAt\n      startedAt\n      completedAt\n      uploads(first: 100) {\n        edges {\n          node {\n            id\n            filename\n            byteSize\n            mimeType\n            status\n            attempts\n            errorMessage\n            width\n            height\n            format\n            description\n            analysisStatus\n            thumbnailUrl\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Batches($first: Int, $after: String) {\n    batches(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          totalUploads\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"): (typeof documents)["\n  query Batches($first: Int, $after: String) {\n    batches(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          totalUploads\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query UploadById($id: ID!) {\n    upload(id: $id) {\n      id\n      filename\n      thumbnailUrl\n    }\n  }\n"): (typeof documents)["\n  query UploadById($id: ID!) {\n    upload(id: $id) {\n      id\n      filename\n      thumbnailUrl\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query NodeById($id: ID!) {\n    node(id: $id) {\n      __typename\n      id\n    }\n  }\n"): (typeof documents)["\n  query NodeById($id: ID!) {\n    node(id: $id) {\n      __typename\n      id\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription BatchProgress($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        batch {\n          id\n          status\n          processedUploads\n          successfulUploads\n          failedUploads\n          progressPercent\n        }\n      }\n      ... on FileProgress {\n        stage\n        percent\n        batch {\n          processedUploads\n        }\n        upload {\n          id\n          filename\n          status\n          attempts\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription BatchProgress($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        batch {\n          id\n          status\n          processedUploads\n          successfulUploads\n          failedUploads\n          progressPercent\n        }\n      }\n      ... on FileProgress {\n        stage\n        percent\n        batch {\n          processedUploads\n        }\n        upload {\n          id\n          filename\n          status\n          attempts\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelBatch($id: ID!) {\n    cancelBatch(id: $id) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CancelBatch($id: ID!) {\n    cancelBatch(id: $id) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryFailedUploads($batchId: ID!) {\n    retryFailedUploads(batchId: $batchId) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n          failedUploads\n          successfulUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation RetryFailedUploads($batchId: ID!) {\n    retryFailedUploads(batchId: $batchId) {\n      __typename\n      ... on BatchResult {\n        batch {\n          id\n          status\n          failedUploads\n          successfulUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteUpload($id: ID!) {\n    deleteUpload(id: $id) {\n      __typename\n      ... on DeleteUploadSuccess {\n        deletedUploadId\n        batch {\n          totalUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation DeleteUpload($id: ID!) {\n    deleteUpload(id: $id) {\n      __typename\n      ... on DeleteUploadSuccess {\n        deletedUploadId\n        batch {\n          totalUploads\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription ProgressWithSeq($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        seq\n        batch {\n          status\n          processedUploads\n        }\n      }\n      ... on FileProgress {\n        seq\n        stage\n        upload {\n          id\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription ProgressWithSeq($batchId: ID!) {\n    batchProgress(batchId: $batchId) {\n      __typename\n      ... on BatchProgress {\n        seq\n        batch {\n          status\n          processedUploads\n        }\n      }\n      ... on FileProgress {\n        seq\n        stage\n        upload {\n          id\n        }\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;