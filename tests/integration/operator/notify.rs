//! Notifications (see notify tests below).
