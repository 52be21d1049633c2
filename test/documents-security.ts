import { graphql } from './gql/index.ts';

export const SignOut = graphql(`
  mutation SignOut {
    signOut
  }
`);

export const SignInRetry = graphql(`
  mutation SignInRetry($email: String!, $password: String!) {
    signIn(email: $email, password: $password) {
      __typename
      ... on Error {
        code
      }
      ... on TooManyAttemptsError {
        retryAfterSeconds
      }
    }
  }
`);

export const NodesById = graphql(`
  query NodesById($ids: [ID!]!) {
    nodes(ids: $ids) {
      __typename
      id
    }
  }
`);

export const UploadsOfBatch = graphql(`
  query UploadsOfBatch($id: ID!) {
    batch(id: $id) {
      uploads(first: 100) {
        edges {
          node {
            id
            filename
            status
            errorMessage
            thumbnailUrl
          }
        }
      }
    }
  }
`);

/** The deepest legitimate read: every batch with its first thumbnails (7 fields deep). */
export const BatchesWithThumbnails = graphql(`
  query BatchesWithThumbnails {
    batches(first: 10) {
      edges {
        node {
          uploads(first: 20) {
            edges {
              node {
                thumbnailUrl
              }
            }
          }
        }
      }
    }
  }
`);

export const UploadFileUrls = graphql(`
  query UploadFileUrls($id: ID!) {
    upload(id: $id) {
      thumbnailUrl
      previewUrl
    }
  }
`);
