package main

import "context"

func runApplyFault(ctx context.Context, s *suite, r *result)   {}
