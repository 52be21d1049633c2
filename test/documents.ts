import { graphql } from './gql/index.ts';

export const SignUp = graphql(`
  mutation SignUp($email: String!, $password: String!) {
    signUp(email: $email, password: $password) {
      __typename
      ... on AuthSuccess {
        token
        user {
          id
          email
        }
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const SignIn = graphql(`
  mutation SignIn($email: String!, $password: String!) {
    signIn(email: $email, password: $password) {
      __typename
      ... on AuthSuccess {
        token
      }
      ... on Error {
        code
        message
      }
    }
  }
`);

export const Viewer = graphql(`
  query Viewer {
    viewer {
      id
      email
    }
  }
`);

export const CreateBatch = graphql(`
  mutation CreateBatch($files: [File!]!) {
    createBatch(files: $files) {
      __typename
      ... on CreateBatchSuccess {
        batch {
          id
          status
          totalUploads
        }
        rejectedFiles {
          filename
          code
          message
        }
      }
      ... on NoAcceptableFilesError {
        code
        message
        rejectedFiles {
          filename
          code
          message
        }
      }
    }
  }
`);

export const BatchDetails = graphql(`
  query BatchDetails($id: ID!) {
    batch(id: $id) {
      id
      status
      totalUploads
      processedUploads
      successfulUploads
      failedUploads
      progressPercent
      createdAt
      startedAt
      completedAt
      uploads(first: 100) {
        edges {
          node {
            id
            filename
            byteSize
            mimeType
            status
            attempts
            errorMessage
            width
            height
            format
            description
            analysisStatus
            thumbnailUrl
          }
        }
      }
    }
  }
`);

export const Batches = graphql(`
  query Batches($first: Int, $after: String) {
    batches(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          totalUploads
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const UploadById = graphql(`
  query UploadById($id: ID!) {
    upload(id: $id) {
      id
      filename
      thumbnailUrl
    }
  }
`);

export const NodeById = graphql(`
  query NodeById($id: ID!) {
    node(id: $id) {
      __typename
      id
    }
  }
`);

export const BatchProgress = graphql(`
  subscription BatchProgress($batchId: ID!) {
    batchProgress(batchId: $batchId) {
      __typename
      ... on BatchProgress {
        batch {
          id
          status
          processedUploads
          successfulUploads
          failedUploads
          progressPercent
        }
      }
      ... on FileProgress {
        stage
        percent
        batch {
          processedUploads
        }
        upload {
          id
          filename
          status
          attempts
        }
      }
    }
  }
`);
