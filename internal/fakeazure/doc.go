// Package fakeazure holds test doubles for the Azure services GraphUsersTimer talks to: the App
// Service and IMDS managed identity token endpoints, Microsoft Graph's /v1.0/users, and the
// directory's service principals and app role assignments that granting the job its permission
// uses (see Directory).
//
// The doubles speak the real wire protocols, so tests run the real azidentity, MSAL and azcore code
// against them instead of mocking those libraries. The tenant is synthetic and deterministic: user
// i always has the same id and properties, so a test can predict every page.
package fakeazure
