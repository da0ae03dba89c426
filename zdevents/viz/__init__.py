"""What people look at: matplotlib charts, takeaway sentences, the HTML report and the deck."""
