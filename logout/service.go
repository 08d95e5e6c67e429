package logout

// Service delivers logout tokens. (Being written.)
type Service struct{}
