//! Network security group evaluation and network-rule gaps.
