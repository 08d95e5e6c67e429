package main

import "context"

func runKillBackfill(ctx context.Context, s *suite, r *result) {}
func runApplyFault(ctx context.Context, s *suite, r *result)   {}
