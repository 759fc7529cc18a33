// Package fakeazure holds test doubles for the Azure services GraphUsersTimer talks to: the App
// Service and IMDS managed identity token endpoints, Microsoft Graph's /v1.0/users (with its
// $count and delta), and the directory's service principals and app role assignments that
// granting the job its permission uses (see Directory).
//
// The doubles speak the real wire protocols, so tests run the real azidentity, MSAL and azcore code
// against them instead of mocking those libraries. The tenant is generated and deterministic: user
// i always has the same id and properties, so a test can predict every page, whether the tenant
// is synthetic (see UserJSON) or realistic (see RealisticUPN). A test may change it while it
// serves (see Graph.Change), and ask it what it holds (see Graph.ListedUsers).
package fakeazure
