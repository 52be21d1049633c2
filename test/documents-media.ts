import { graphql } from './gql/index.ts';

export const CreateBatchMedia = graphql(`
  mutation CreateBatchMedia($files: [File!]!) {
    createBatch(files: $files) {
      __typename
      ... on CreateBatchSuccess {
        batch {
          id
          totalUploads
        }
        rejectedFiles {
          filename
          code
        }
        duplicates {
          filename
          existingUploadId
          existingUpload {
            id
            filename
          }
        }
      }
      ... on NoAcceptableFilesError {
        code
        message
        duplicates {
          filename
          existingUploadId
        }
      }
    }
  }
`);

export const UploadMediaFields = graphql(`
  fragment UploadMediaFields on Upload {
    id
    filename
    kind
    status
    attempts
    errorMessage
    mimeType
    byteSize
    sha256
    width
    height
    format
    thumbnailUrl
    previewUrl
    placeholderHash
    takenAt
    camera {
      make
      model
      lens
      exposureTime
      fNumber
      iso
      focalLength
    }
    location {
      latitude
      longitude
    }
    video {
      durationSeconds
      codec
      frameRate
    }
    description
    analysisStatus
  }
`);

export const BatchMedia = graphql(`
  query BatchMedia($id: ID!) {
    batch(id: $id) {
      id
      status
      uploads(first: 100) {
        edges {
          node {
            ...UploadMediaFields
          }
        }
      }
    }
  }
`);

export const UploadMedia = graphql(`
  query UploadMedia($id: ID!) {
    upload(id: $id) {
      ...UploadMediaFields
    }
  }
`);

export const SearchUploads = graphql(`
  query SearchUploads($query: String!, $first: Int, $after: String) {
    search(query: $query, first: $first, after: $after) {
      edges {
        cursor
        score
        node {
          id
          filename
          description
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const SimilarUploads = graphql(`
  query SimilarUploads($id: ID!, $first: Int) {
    similarUploads(id: $id, first: $first) {
      edges {
        score
        node {
          id
          filename
        }
      }
    }
  }
`);
