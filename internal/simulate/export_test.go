package simulate

import "context"

// Execute runs a simulation and returns, with its summary, what the
// checker was given, for tests that feed the checker a defect.
func Execute(ctx context.Context, cfg Config) (Summary, Input, error) {
	return execute(ctx, cfg)
}
