import { graphql } from '../gql/index.ts';

export const CancelBatch = graphql(`
  mutation CancelBatch($id: ID!) {
    cancelBatch(id: $id) {
      __typename
      ... on BatchResult {
        batch {
          id
          status
        }
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const RetryFailedUploads = graphql(`
  mutation RetryFailedUploads($batchId: ID!) {
    retryFailedUploads(batchId: $batchId) {
      __typename
      ... on BatchResult {
        batch {
          id
          status
          failedUploads
          successfulUploads
        }
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const DeleteUpload = graphql(`
  mutation DeleteUpload($id: ID!) {
    deleteUpload(id: $id) {
      __typename
      ... on DeleteUploadSuccess {
        deletedUploadId
        batch {
          totalUploads
        }
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const ProgressWithSeq = graphql(`
  subscription ProgressWithSeq($batchId: ID!) {
    batchProgress(batchId: $batchId) {
      __typename
      ... on BatchProgress {
        seq
        batch {
          status
          processedUploads
        }
      }
      ... on FileProgress {
        seq
        stage
        upload {
          id
        }
      }
    }
  }
`);
