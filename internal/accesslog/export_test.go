package accesslog

// PruneInBatches is Prune with a batch size small enough for a test to
// cover several batches.
var PruneInBatches = prune
