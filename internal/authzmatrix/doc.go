// Package authzmatrix holds the authorization matrix of the whole server:
// every route the server registers, as `serve` wires it, requested by every
// kind of account (signed out, a worker of each team, a supervisor of one
// team, a supervisor of both, a superuser) against a record of its own
// team and of the other, with what the access policy says must come of
// it, and a search of every answer for the other team's data. A route or
// a collection added without rows fails the matrix. The package has no
// code of its own: the matrix is matrix_test.go.
package authzmatrix
